// The phone page in a real browser: headless Chromium driven by playwright-core against a real
// `baton daemon` on loopback that `runtime/tests/phone_page.rs` started. That test passes
// everything in the environment variable BATON_BROWSER_TEST (JSON):
//   pageUrl           the phone URL `baton phone` printed (with the mobile token)
//   apiUrl            the daemon's loopback API, for the coordinator's REST calls
//   coordinatorToken  a registered coordinator's token (its sub-tasks run the demo agent)
//   coordinatorId     its id; its own agent (the demo agent as a coordinator, given no prompt)
//                     runs already
//   shots             the directory the screenshots go to
// It makes the coordinator's sub-task through REST, as a coordinator's agent would, and checks
// what the page shows meanwhile. The phone's page reaches the daemon through a TCP relay on
// loopback that the script cuts or stalls to drop the page's network. To restart the daemon under the open
// page it prints the line `baton:restart` and waits for the line `restarted` on its standard
// input. Every wait is bounded (WAIT_MS); the first failed check ends the run with its reason and
// a non-zero exit code.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

/** Longest any one condition is waited for. */
const WAIT_MS = 30_000;
/** How often the page's agent states are sampled, to see a status change happen. */
const SAMPLE_MS = 20;
/** Past the page's SILENCE_MS_MAX (35 s): a silent connection is given up by then. */
const SILENCE_MS = 36_000;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

const config = JSON.parse(process.env.BATON_BROWSER_TEST ?? '{}');
for (const key of ['pageUrl', 'apiUrl', 'coordinatorToken', 'coordinatorId', 'shots']) {
  if (!config[key]) {
    console.error(`BATON_BROWSER_TEST lacks ${key}`);
    process.exit(2);
  }
}
mkdirSync(config.shots, { recursive: true });

function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

async function rest(method, path, body) {
  const response = await fetch(config.apiUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${config.coordinatorToken}`,
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await response.text();
  check(response.ok, `${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * A line between the phone and the daemon that the test can cut: a TCP relay on loopback.
 * Dropped, every connection through it, open or new, is closed at once (a reset). Stalled, the
 * open connections carry nothing more and close nothing (a network gone without a word) and new
 * ones are closed at once; restored, the stalled ones are closed and new ones carry again.
 */
async function relay(target) {
  const sockets = new Set();
  let mode = 'up';
  const server = createServer((client) => {
    if (mode !== 'up') {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      sockets.add(from);
      from.on('error', end);
      from.on('close', end);
      from.on('data', (data) => {
        if (mode !== 'up') return;
        // The daemon answers only to its own address (issue 20): the page's requests name the
        // relay's, so their Host and Origin are told the daemon's instead.
        to.write(from === client ? Buffer.from(data.toString('latin1').split(relayed).join(target.host), 'latin1') : data);
      });
    }
  });
  await new Promise((listening) => server.listen(0, '127.0.0.1', listening));
  const relayed = `127.0.0.1:${server.address().port}`;
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: server.address().port,
    drop() {
      mode = 'down';
      cut();
    },
    stall() {
      mode = 'stalled';
    },
    restore() {
      if (mode === 'stalled') cut();
      mode = 'up';
    },
    close() {
      this.drop();
      server.close();
    },
  };
}

const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

/** Asks the test to restart the daemon, and waits until it has. */
async function restartDaemon() {
  console.log('baton:restart');
  const { value, done } = await lines.next();
  check(!done && value === 'restarted', `the test answered ${value} to the restart`);
}

async function shot(page, name) {
  const path = join(config.shots, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  console.log(`screenshot ${path}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
});

// The phone's page goes through the relay, so the test can drop its network.
const link = await relay(new URL(config.pageUrl));
const relayed = new URL(config.pageUrl);
relayed.port = String(link.port);
const pageUrl = relayed.href;

let page;
try {
  const phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  // The page's timers run on a clock the test can move on (time flows as usual otherwise).
  await phone.clock.install();
  page = await phone.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(message.text()));

  // The page takes its token from the URL once and keeps it out of the address bar.
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.__baton?.connected === true);
  check(!page.url().includes('token='), `the token left the address bar (${page.url()})`);
  const token = new URL(config.pageUrl).searchParams.get('token');
  check(!consoleLines.some((line) => line.includes(token)), 'the token was logged to the console');
  await page.getByTestId('agent-list').waitFor();

  // A sub-task appears and goes from working to its prompt; the page follows it live.
  await page.evaluate((every) => {
    window.__seen = [];
    setInterval(() => {
      for (const row of document.querySelectorAll('[data-testid="agent-row"]')) {
        const last = window.__seen.findLast((seen) => seen.agent === row.dataset.agentId);
        if (last?.state !== row.dataset.state) {
          window.__seen.push({ agent: row.dataset.agentId, state: row.dataset.state });
        }
      }
    }, every);
  }, SAMPLE_MS);
  const task = await rest('POST', '/api/tasks', { name: 'alpha', prompt: 'Write the alpha notes' });
  const row = page.getByTestId('agent-row').filter({ hasText: 'alpha' });
  await row.waitFor();
  const agentId = await row.getAttribute('data-agent-id');
  await page.waitForFunction(
    (agent) => document.querySelector(`[data-testid="agent-row"][data-agent-id="${agent}"]`)?.dataset.state === 'waiting_for_input'
      && window.__seen.some((seen) => seen.agent === agent && seen.state !== 'waiting_for_input'),
    agentId,
  );
  const seen = await page.evaluate(() => window.__seen);
  console.log(`states seen: ${seen.map((s) => s.state).join(' → ')}`);
  // The demo agent signals done once its note is committed: the list says so.
  await page.waitForFunction(
    (agent) => document.querySelector(`[data-testid="agent-row"][data-agent-id="${agent}"]`)?.textContent.toLowerCase().includes('done'),
    agentId,
  );
  // The coordinator's own agent leads its group, at its prompt.
  await page.waitForFunction(
    (id) => document.querySelector(`[data-testid="coordinator-group"][data-coordinator-id="${id}"] [data-testid="coordinator-agent-row"]`)
      ?.dataset.state === 'waiting_for_input',
    config.coordinatorId,
  );
  await shot(page, 'list-phone');

  // The terminal: what the agent showed so far, then output as it arrives.
  await row.click();
  await page.getByTestId('agent-detail').waitFor();
  await page.getByTestId('terminal').waitFor();
  // The scrollback: the agent's last screen, after its work on the assignment.
  await page.waitForFunction(() => window.__baton.termText().includes('the change is committed'));
  // Live output: a new prompt makes the agent show its busy screen, then its prompt again.
  await page.evaluate((every) => {
    window.__sawBusy = false;
    setInterval(() => {
      window.__sawBusy ||= window.__baton.termText().includes('esc to interrupt');
    }, every);
  }, SAMPLE_MS);
  await rest('POST', `/api/tasks/${task.id}/prompt`, { prompt: 'Now a second pass' });
  await page.waitForFunction(() => window.__sawBusy && window.__baton.termText().includes('❯')
    && !window.__baton.termText().includes('esc to interrupt'));
  await page.getByTestId('font-bigger').click();
  await shot(page, 'terminal-phone');

  // The network drops under the open terminal and comes back: the page says so, reconnects by
  // itself, subscribes again and follows new output, without a reload.
  await page.evaluate(() => {
    window.__notReloaded = true;
    window.__sawBusy = false;
  });
  const subscribesBefore = (await page.evaluate(() => window.__baton.sent)).filter((type) => type === 'subscribe').length;
  link.drop();
  await page.waitForFunction(() => !window.__baton.connected);
  await page.getByTestId('banner').waitFor();
  link.restore();
  await page.waitForFunction(() => window.__baton.connected);
  await page.getByTestId('banner').waitFor({ state: 'hidden' });
  const subscribesAfter = (await page.evaluate(() => window.__baton.sent)).filter((type) => type === 'subscribe').length;
  check(subscribesAfter > subscribesBefore, 'the terminal did not subscribe again');
  await rest('POST', `/api/tasks/${task.id}/prompt`, { prompt: 'And a third pass' });
  await page.waitForFunction(() => window.__sawBusy && window.__baton.termText().includes('❯')
    && !window.__baton.termText().includes('esc to interrupt'));
  check(await page.evaluate(() => window.__notReloaded === true), 'the page was reloaded after the drop');

  // The network goes silent under the open terminal: nothing closes, nothing arrives. Past the
  // silence the daemon's heartbeat rules out (the page's clock is moved on to it), the page gives
  // the connection up, says so, and comes back once the network does.
  link.stall();
  await page.clock.fastForward(SILENCE_MS);
  await page.waitForFunction(() => !window.__baton.connected);
  await page.getByTestId('banner').waitFor();
  link.restore();
  await page.waitForFunction(() => window.__baton.connected);
  await page.getByTestId('banner').waitFor({ state: 'hidden' });
  await page.evaluate(() => { window.__sawBusy = false; });
  await rest('POST', `/api/tasks/${task.id}/prompt`, { prompt: 'And a last pass' });
  await page.waitForFunction(() => window.__sawBusy && window.__baton.termText().includes('❯')
    && !window.__baton.termText().includes('esc to interrupt'));
  check(await page.evaluate(() => window.__notReloaded === true), 'the page was reloaded after the silence');

  // The coordinator at a glance: its own agent at its prompt, its sub-task.
  await page.goto(new URL(`/#/coordinator/${config.coordinatorId}`, pageUrl).href);
  const glance = page.getByTestId('coordinator-view');
  await glance.waitFor();
  await glance.getByText('alpha').waitFor();
  const lead = glance.getByTestId('coordinator-agent-row');
  await page.waitForFunction(
    () => document.querySelector('[data-testid="coordinator-view"] [data-testid="coordinator-agent-row"]')?.dataset.state === 'waiting_for_input',
  );
  await shot(page, 'coordinator-phone');

  // The coordinator's own terminal, from its row.
  await lead.click();
  await page.getByTestId('agent-detail').waitFor();
  await page.waitForFunction(() => window.__baton.termText().includes('❯'));
  const title = await page.getByTestId('agent-detail').locator('.title').textContent();
  check(title === 'Coordinator', `the coordinator's terminal is called ${title}`);
  await shot(page, 'coordinator-terminal-phone');


  // On a desktop.
  const desktop = await browser.newContext({ viewport: DESKTOP });
  const wide = await desktop.newPage();
  wide.setDefaultTimeout(WAIT_MS);
  await wide.goto(config.pageUrl);
  await wide.getByTestId('agent-row').filter({ hasText: 'alpha' }).waitFor();
  await shot(wide, 'list-desktop');
  await wide.getByTestId('agent-row').filter({ hasText: 'alpha' }).click();
  await wide.waitForFunction(() => window.__baton.termText().includes('❯'));
  await shot(wide, 'terminal-desktop');
  await desktop.close();

  // The daemon restarts under the open list: the page says it reconnects, then shows the
  // restored task (its agent ended with the old daemon), without a reload.
  await page.evaluate(() => { location.hash = '#/'; });
  await page.getByTestId('agent-list').waitFor();
  await page.evaluate(() => {
    window.__notReloaded = true;
    window.__bannerShown = false;
    const banner = document.querySelector('[data-testid="banner"]');
    new MutationObserver(() => { window.__bannerShown ||= !banner.hidden; })
      .observe(banner, { attributes: true });
  });
  await restartDaemon();
  await page.waitForFunction(() => window.__bannerShown);
  await page.waitForFunction(
    (agent) => window.__baton.connected
      && document.querySelector(`[data-testid="agent-row"][data-agent-id="${agent}"]`)?.dataset.state === 'exited',
    agentId,
  );
  check(await page.evaluate(() => window.__notReloaded === true), 'the page was reloaded');
  await page.getByTestId('banner').waitFor({ state: 'hidden' });

  // Read-only: the page never sent anything but its token and its subscriptions.
  const sent = await page.evaluate(() => window.__baton.sent);
  const writes = sent.filter((type) => !['auth', 'subscribe', 'unsubscribe'].includes(type));
  check(sent.includes('auth') && sent.includes('subscribe'), `the page sent ${sent}`);
  check(writes.length === 0, `the page sent writes: ${writes}`);

  // A wrong token is refused with a clear message, and no reconnecting.
  const stranger = await browser.newContext({ viewport: PHONE });
  const refused = await stranger.newPage();
  refused.setDefaultTimeout(WAIT_MS);
  const wrong = new URL(config.pageUrl);
  wrong.searchParams.set('token', 'not-the-token');
  await refused.goto(wrong.href);
  await refused.getByTestId('fatal').waitFor();
  check(
    (await refused.getByTestId('fatal').textContent()).includes('baton phone'),
    'the refusal tells what to do',
  );
  await shot(refused, 'refused-phone');

  console.log('browser checks passed');
} catch (error) {
  console.error(error?.stack ?? String(error));
  // What the page showed when it failed, for the report.
  if (page) {
    await page.screenshot({ path: join(config.shots, 'failure.png') }).catch(() => {});
    const text = await page.evaluate(() => window.__baton?.termText?.() ?? '').catch(() => '');
    console.error(`the terminal showed:\n${text}`);
  }
  process.exitCode = 1;
} finally {
  input.close();
  await browser.close();
  link.close();
}
