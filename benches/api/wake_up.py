"""Wake-up latency of the REST API: from sending `POST /api/tasks/:id/done` to the answer of the
`POST /api/wait-signal` that was waiting, over loopback. Run the API first (see ../../README.md,
Benchmarks) and pass its printed line: `python3 benches/api/wake_up.py "$(cat api.out)"`."""
import json, sys, threading, time, http.client, urllib.parse
url, token = sys.argv[1].split()[:2]
host = urllib.parse.urlparse(url)
def call(method, path, body=None):
    c = http.client.HTTPConnection(host.hostname, host.port)
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); data = r.read(); c.close(); return r.status, data
tasks = json.loads(call("GET", "/api/tasks")[1])
task = tasks[0]["id"]
samples = []
for n in range(50):
    got = {}
    def wait():
        s, d = call("POST", "/api/wait-signal", {"timeoutMs": 10000, "requestId": f"w{n}"})
        got["t"] = time.perf_counter(); got["s"] = s; got["d"] = d
    t = threading.Thread(target=wait); t.start(); time.sleep(0.05)
    t0 = time.perf_counter(); s, _ = call("POST", f"/api/tasks/{task}/done"); t.join()
    assert got["s"] == 200 and json.loads(got["d"]).get("taskId") == task, got
    samples.append((got["t"] - t0) * 1000)
samples.sort()
print(f"done -> wait-signal answer: median {samples[len(samples)//2]:.2f} ms, p90 {samples[int(len(samples)*0.9)]:.2f} ms, max {samples[-1]:.2f} ms over {len(samples)}")
