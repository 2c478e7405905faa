use super::{At, FORMAT, SCENARIO_BYTES_MAX, ScenarioError, parse, parse_at};

const EXAMPLE: &str = r#"
format = 1
name = "a signal given while the coordinator waits"
seed = 7

[world.repo]
files = { "README.md" = "hello\n" }

[[coordinator]]
name = "coord-1"

[[agent]]
task = "feat-x"
script = [{ print = "ready" }, { call = "signal_done" }]

[[step]]
at = "0ms"
actor = "coord-1"
call = "create_task"
args = { name = "feat-x", prompt = "Implement feat-x" }
bind = { task = "taskId" }
expect = { status = "running" }

[[step]]
at = "+10ms"
actor = "coord-1"
call = "wait_for_signal_done"
args = { timeoutMs = 60_000 }
expect = { taskId = "${task}", remaining = 0 }

[[fault]]
at = "5s"
kind = "kill_agent"
task = "feat-x"
"#;

#[test]
fn the_worked_example_reads() {
    let scenario = parse(EXAMPLE).unwrap();
    assert_eq!(scenario.format, FORMAT);
    assert_eq!(scenario.seed, 7);
    assert_eq!(scenario.world.repo.main, "main", "the default");
    assert_eq!(scenario.world.repo.files["README.md"], "hello\n");
    assert_eq!(scenario.coordinators[0].agent, "claude", "the default");
    assert_eq!(scenario.coordinators[0].notification_delay_ms, 30_000);
    assert_eq!(scenario.agents[0].script.len(), 2);
    assert_eq!(scenario.steps.len(), 2);
    assert_eq!(scenario.steps[0].bind["task"], "taskId");
    assert_eq!(scenario.faults[0].kind, "kill_agent");
}

fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn an_unknown_field_is_an_error_with_its_line() {
    let error = error_of(
        "format = 1\nname = \"x\"\n\n[[step]]\nactor = \"app\"\ncall = \"x\"\nexpcet = {}\n",
    );
    assert!(error.contains("expcet"), "{error}");
    assert!(error.contains("line 7"), "{error}");
}

#[test]
fn another_format_is_refused() {
    assert_eq!(
        parse("format = 2\nname = \"x\"\n").unwrap_err(),
        ScenarioError::Format(2)
    );
    assert!(
        error_of("name = \"x\"\n").contains("format"),
        "format is required"
    );
}

#[test]
fn times_have_units() {
    assert_eq!(parse_at("0ms"), Ok(At::Absolute(0)));
    assert_eq!(parse_at("+500ms"), Ok(At::After(500)));
    assert_eq!(parse_at("5s"), Ok(At::Absolute(5_000)));
    assert_eq!(parse_at("2m"), Ok(At::Absolute(120_000)));
    assert_eq!(parse_at("1_500ms"), Ok(At::Absolute(1_500)));
    for bad in [
        "",
        "5",
        "+",
        "ms",
        "-5ms",
        "1.5s",
        "5 s",
        "99999999999999999999m",
    ] {
        assert!(parse_at(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn steps_must_name_known_actors_and_go_forward_in_time() {
    let unknown = error_of(
        "format = 1\nname = \"x\"\n[[step]]\nactor = \"coord-9\"\ncall = \"list_tasks\"\n",
    );
    assert_eq!(
        unknown,
        "step 1 (list_tasks): actor \"coord-9\" is neither a coordinator, \"app\" nor \"attacker\""
    );
    let backwards = error_of(
        "format = 1\nname = \"x\"\n[[step]]\nat = \"2s\"\nactor = \"app\"\ncall = \"staged\"\n\
         [[step]]\nat = \"1s\"\nactor = \"app\"\ncall = \"read_file\"\n",
    );
    assert_eq!(
        backwards,
        "step 2 (read_file): at \"1s\" is 1000 ms, before the step before it (2000 ms)"
    );
}

#[test]
fn a_misspelt_call_is_refused_with_the_calls_there_are() {
    let coordinator = error_of(
        "format = 1\nname = \"x\"\n[[coordinator]]\nname = \"c\"\n\
         [[step]]\nactor = \"c\"\ncall = \"creat_task\"\n",
    );
    assert!(
        coordinator.starts_with("step 1 (creat_task): a coordinator has no call \"creat_task\"; its calls are create_task, "),
        "{coordinator}"
    );
    let then = error_of(
        "format = 1\nname = \"x\"\n[[step]]\nactor = \"app\"\ncall = \"staged\"\n\
         then = [{ call = \"merge_task\" }]\n",
    );
    assert!(
        then.contains("the app has no call \"merge_task\""),
        "{then}"
    );
}

#[test]
fn a_binding_is_made_before_it_is_used() {
    let error = error_of(
        "format = 1\nname = \"x\"\n[[step]]\nactor = \"app\"\ncall = \"close_task\"\n\
         args = { taskId = \"${task}\" }\n",
    );
    assert_eq!(
        error,
        "step 1 (close_task): ${task} is used before a step binds it"
    );
}

#[test]
fn names_are_unique_and_the_file_is_bounded() {
    let twice = error_of(
        "format = 1\nname = \"x\"\n[[coordinator]]\nname = \"c\"\n[[coordinator]]\nname = \"c\"\n",
    );
    assert_eq!(twice, "coordinator 2 is named \"c\", a name already taken");
    let app = error_of("format = 1\nname = \"x\"\n[[coordinator]]\nname = \"app\"\n");
    assert!(app.contains("already taken"), "{app}");
    let huge = "#".repeat(SCENARIO_BYTES_MAX + 1);
    assert_eq!(
        parse(&huge).unwrap_err(),
        ScenarioError::TooLarge(SCENARIO_BYTES_MAX + 1)
    );
}

#[test]
fn the_worked_example_in_the_format_guide_reads() {
    let guide = include_str!("../../../scenarios/README.md");
    let start = guide.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + guide[start..].find("```").expect("its end");
    let scenario = parse(&guide[start..end]).expect("the guide's example is a valid scenario");
    assert_eq!(scenario.steps.len(), 3);
    assert_eq!(scenario.faults[0].kind, "partition");
}

#[test]
fn the_attacker_sends_only_raw_traffic() {
    let error = error_of(
        r#"format = 1
name = "x"

[[step]]
actor = "attacker"
call = "create_task"
"#,
    );
    assert!(
        error.contains("only \"attacker\" sends raw traffic"),
        "{error}"
    );
    let raw = parse(
        r#"format = 1
name = "x"

[[step]]
actor = "attacker"
call = "http"
args = { method = "GET", path = "/api/tasks" }
"#,
    );
    assert!(raw.is_ok(), "the format has it, {raw:?}");
}
