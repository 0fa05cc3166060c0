// End-to-end test of the chat page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no downloaded browser). Run by apps/chat/tests/browser.rs, which owns the
// chat server process.
//
// Usage: node chat/browser.mjs <page url> <screenshot dir>
//
// Talks to the Rust test in lines:
//   stdout  step <name> <ms>        a step passed
//           screenshot <path>       a screenshot was written
//           restart:kill            please kill the server (SIGKILL)
//           restart:start           please start it again on the same port
//           ok                      every step passed (then exit 0)
//   stdin   killed | started        the answers
// Any failure: the error on stderr, screenshots of every page as failure-<name>.png, exit 1.

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join as pathJoin } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const [url, shotDir] = process.argv.slice(2);
if (!url || !shotDir) {
  console.error('usage: node chat/browser.mjs <url> <screenshot dir>');
  process.exit(2);
}
mkdirSync(shotDir, { recursive: true });

const WAIT = 10_000;
const started = Date.now();

// Lines from the Rust test, one awaited at a time.
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function answer(expected) {
  const { value, done } = await input.next();
  if (done || value.trim() !== expected) throw new Error(`expected "${expected}" from the test, got ${done ? 'EOF' : JSON.stringify(value)}`);
}

let stepStart = Date.now();
function step(name) {
  console.log(`step ${name} ${Date.now() - stepStart}`);
  stepStart = Date.now();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage'],
});
const pages = {};

async function open(name, nick, query = '') {
  const context = await browser.newContext({ viewport: { width: 1200, height: 720 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] page error: ${e.message}`));
  page.on('console', (m) => {
    // Refused connections are expected while the server is down.
    if (m.type() === 'error' && !m.text().includes('ERR_CONNECTION_REFUSED')) console.error(`[${name}] console: ${m.text()}`);
  });
  pages[name] = page;
  await page.goto(url + '/' + query);
  await page.fill('#nick', nick);
  await page.click('#login-form button[type=submit]');
  await connected(page);
  // Everyone lands in #lobby.
  await page.locator('#rooms li[data-room="lobby"].joined').waitFor({ timeout: WAIT });
  return page;
}

async function connected(page) {
  await page.locator('#status[data-state="connected"]').waitFor({ timeout: WAIT });
}

async function join(page, room) {
  await page.click(`#rooms li[data-room="${room}"] button.join`);
  await page.locator(`#rooms li[data-room="${room}"].joined.active`).waitFor({ timeout: WAIT });
  await page.locator('#text:enabled').waitFor({ timeout: WAIT });
}

async function send(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

// A message with this text in the open conversation.
function message(page, text) {
  return page.locator('#messages .item.message .text', { hasText: text });
}

async function until(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT });
  } catch (e) {
    throw new Error(`${what}: ${e.message.split('\n')[0]}`);
  }
}

const transport = (page) => page.evaluate(() => window.chat.socket.io.engine.transport.name);

try {
  // Two people in one room.
  const alice = await open('alice', 'alice');
  const bob = await open('bob', 'bob');
  await join(alice, 'rust');
  await join(bob, 'rust');
  await until(alice, () => document.querySelector('#rooms li[data-room="rust"] .count')?.textContent === '2',
    null, 'alice sees 2 members in #rust');
  await alice.locator('#messages .item.system', { hasText: 'bob joined' }).waitFor({ timeout: WAIT });
  step('two pages join #rust');

  // Typing indicator (volatile), then the message and its delivery confirmation.
  await alice.fill('#text', 'Hello from ali');
  await bob.locator('#typing', { hasText: 'alice is typing…' }).waitFor({ timeout: WAIT });
  step('typing indicator');
  await send(alice, 'Hello from alice');
  await message(bob, 'Hello from alice').waitFor({ timeout: WAIT });
  await alice.locator('.item.mine', { hasText: 'Hello from alice' })
    .locator('.delivery[data-state="delivered"]', { hasText: 'Delivered to 1 person' }).waitFor({ timeout: WAIT });
  await until(bob, () => document.querySelector('#typing').textContent === '', null, 'typing indicator cleared');
  await send(bob, 'Hi alice! Rust + Socket.IO, nice.');
  await message(alice, 'Rust + Socket.IO, nice.').waitFor({ timeout: WAIT });
  step('message and ack');

  // A private message (to the socket id), confirmed by the recipient's ack.
  await bob.click('#users button.user[data-user="alice"]');
  await bob.locator('#conv-title', { hasText: '@alice' }).waitFor({ timeout: WAIT });
  await send(bob, 'psst, this one is just for you');
  await alice.locator('#dms li[data-dm="bob"] .badge', { hasText: '1' }).waitFor({ timeout: WAIT });
  await bob.locator('.delivery[data-state="delivered"]', { hasText: '✓✓ Delivered to alice' }).waitFor({ timeout: WAIT });
  await alice.click('#dms li[data-dm="bob"] .room-name');
  await message(alice, 'psst, this one is just for you').waitFor({ timeout: WAIT });
  await alice.click('#rooms li[data-room="rust"] .room-name');
  await bob.click('#rooms li[data-room="rust"] .room-name');
  step('private message');

  // Binary share: a real PNG (a screenshot of the page's logo), checked byte for byte.
  const png = await alice.screenshot({ clip: { x: 0, y: 0, width: 264, height: 100 } });
  const sha = createHash('sha256').update(png).digest('hex');
  await alice.setInputFiles('#file', { name: 'ferrio.png', mimeType: 'image/png', buffer: png });
  const img = bob.locator('#messages img.shared-image');
  await img.waitFor({ timeout: WAIT });
  const received = await img.evaluate(async (node) => {
    await node.decode();
    const bytes = await (await fetch(node.src)).arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return {
      width: node.naturalWidth,
      sha: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
    };
  });
  if (received.sha !== sha || received.width !== 264) {
    throw new Error(`the image bob got differs: ${JSON.stringify(received)} (sent ${sha}, 264 px)`);
  }
  await alice.locator('.item.mine.file .delivery[data-state="delivered"]', { hasText: 'Received by 1 of 1' }).waitFor({ timeout: WAIT });
  // Over the limit: refused on the page, before sending.
  await alice.setInputFiles('#file', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(1024 * 1024 + 1) });
  await alice.locator('.toast.error', { hasText: 'the limit is 1 MiB' }).waitFor({ timeout: WAIT });
  step('binary share');

  // The /news namespace on the same connection.
  await alice.locator('#news-status[data-state="on"]').waitFor({ timeout: WAIT });
  await until(alice, () => document.querySelectorAll('#news li.headline').length >= 2, null, 'news headlines arrive');
  const shared = await alice.evaluate(() => window.chat.socket.io === window.chat.news.io);
  if (!shared) throw new Error('/news does not share the connection of /');
  step('news feed');

  // The page over HTTP long-polling only.
  const carol = await open('carol', 'carol', '?transport=polling');
  await join(carol, 'rust');
  await send(carol, 'Hello over long-polling');
  await message(alice, 'Hello over long-polling').waitFor({ timeout: WAIT });
  await send(alice, 'Welcome carol');
  await message(carol, 'Welcome carol').waitFor({ timeout: WAIT });
  if ((await transport(carol)) !== 'polling') throw new Error('carol is not on polling');
  if ((await transport(alice)) !== 'websocket') throw new Error('alice did not upgrade to websocket');
  await carol.locator('#status', { hasText: 'HTTP long-polling' }).waitFor({ timeout: WAIT });
  step('polling only');

  // A new room from the form appears for everyone, and goes away with its last member.
  await carol.fill('#new-room-name', '#Game-Night');
  await carol.press('#new-room-name', 'Enter');
  await carol.locator('#rooms li[data-room="game-night"].joined.active').waitFor({ timeout: WAIT });
  await until(alice, () => document.querySelector('#rooms li[data-room="game-night"] .count')?.textContent === '1',
    null, 'alice sees the new room');
  await carol.click('#rooms li[data-room="game-night"] button.leave');
  await alice.locator('#rooms li[data-room="game-night"]').waitFor({ state: 'detached', timeout: WAIT });
  await carol.click('#rooms li[data-room="rust"] .room-name');
  step('create and leave a room');

  // The screenshot of the README: bob is typing in alice's #rust.
  await bob.fill('#text', 'Let me try the restart…');
  await alice.locator('#typing', { hasText: 'bob is typing…' }).waitFor({ timeout: WAIT });
  const shot = pathJoin(shotDir, 'chat.png');
  await alice.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  await alice.screenshot({ path: shot, animations: 'disabled' });
  console.log(`screenshot ${shot}`);
  await bob.fill('#text', '');

  // The server is killed and started again on the same port: every page shows that it is
  // reconnecting, comes back with a new session, joins its rooms again and can chat.
  console.log('restart:kill');
  await answer('killed');
  for (const p of [alice, bob, carol]) {
    await p.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
    await p.locator('#banner', { hasText: 'Connection lost' }).waitFor({ timeout: WAIT });
  }
  await alice.screenshot({ path: pathJoin(shotDir, 'chat-reconnecting.png') });
  step('server killed: pages reconnecting');
  console.log('restart:start');
  await answer('started');
  for (const p of [alice, bob, carol]) {
    await connected(p);
    await p.locator('#rooms li[data-room="rust"].joined').waitFor({ timeout: WAIT });
    await p.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT });
  }
  await until(alice, () => document.querySelector('#rooms li[data-room="rust"] .count')?.textContent === '3',
    null, 'everyone back in #rust');
  await send(alice, 'Back after the restart');
  await message(bob, 'Back after the restart').waitFor({ timeout: WAIT });
  await message(carol, 'Back after the restart').waitFor({ timeout: WAIT });
  await alice.locator('.item.mine', { hasText: 'Back after the restart' })
    .locator('.delivery[data-state="delivered"]', { hasText: 'Delivered to 2 people' }).waitFor({ timeout: WAIT });
  // Private messages follow the nickname to its new socket id.
  await bob.click('#dms li[data-dm="alice"] .room-name');
  await send(bob, 'still there?');
  await bob.locator('.delivery[data-state="delivered"]', { hasText: '✓✓ Delivered to alice' }).last().waitFor({ timeout: WAIT });
  if ((await transport(carol)) !== 'polling') throw new Error('carol left polling after the restart');
  step('server restarted: pages chat again');

  console.log('ok');
  console.error(`browser test passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  console.error(`browser test failed: ${e.stack || e}`);
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: pathJoin(shotDir, `failure-${name}.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
