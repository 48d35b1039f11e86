// End-to-end test of the web UI: two real `catchment up` nodes on 127.0.0.1, each driven
// through its own UI in headless Chromium (Debian's `chromium`, via playwright-core).
//
// The story: Ada creates a topic and an invite on node A; Bo joins on node B by pasting it
// (after a bad invite is refused in words); Bo posts and the post appears in Ada's open feed
// without a reload; Ada endorses it and gives Bo kudos, and Bo's profile, the leaderboard and
// Bo's notifications show it; a contribution carrying a script and an event handler runs
// nothing; Bo goes offline, posts, comes back, and the post reaches Ada. Screenshots of each
// main page go to <target>/e2e-screenshots/.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, "target");
const binary = process.env.CATCHMENT_BIN || join(target, "debug", "catchment");
const shots = join(target, "e2e-screenshots");
const browserPath = process.env.CHROMIUM || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);

// Bounds on every wait, so that a broken node fails the run instead of hanging it.
const SHORT = 10_000;
const SYNC = 45_000;

let passed = 0;
let failed = 0;
const nodes = [];

function fail(message) {
  throw new Error(message);
}

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${error.message.split("\n")[0]}`);
    throw error;
  }
}

function cli(home, ...args) {
  return execFileSync(binary, ["--home", home, ...args], { encoding: "utf8", timeout: 30_000 });
}

async function startNode(dir, name) {
  const home = join(dir, name);
  cli(home, "init", "--name", name);
  const log = [];
  const child = spawn(
    binary,
    ["--home", home, "up", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--sync-interval", "2"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
  );
  child.stdout.on("data", (d) => log.push(String(d)));
  child.stderr.on("data", (d) => log.push(String(d)));
  const node = { name, home, child, log };
  nodes.push(node);
  const endpoint = join(home, "api.json");
  const deadline = Date.now() + SHORT;
  while (!existsSync(endpoint)) {
    if (child.exitCode !== null) fail(`node ${name} exited: ${log.join("")}`);
    if (Date.now() > deadline) fail(`node ${name} wrote no api.json within ${SHORT} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  node.port = JSON.parse(readFileSync(endpoint, "utf8")).port;
  node.base = `http://127.0.0.1:${node.port}`;
  return node;
}

async function stopNodes() {
  for (const node of nodes) {
    if (node.child.exitCode === null) {
      node.child.kill("SIGTERM");
      await Promise.race([
        new Promise((r) => node.child.once("exit", r)),
        new Promise((r) => setTimeout(r, 5_000)),
      ]);
      if (node.child.exitCode === null) node.child.kill("SIGKILL");
    }
  }
}

/// Waits until `check` (run in a fresh page load each time) passes, reloading between tries.
async function eventually(page, url, check, what, timeout = SYNC) {
  const deadline = Date.now() + timeout;
  for (;;) {
    await page.goto(url);
    if (await check()) return;
    if (Date.now() > deadline) fail(`${what}: not seen within ${timeout} ms`);
    await page.waitForTimeout(1_000);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function main() {
  if (!browserPath || !existsSync(browserPath)) {
    console.log("FAIL chromium is not installed: `apt-get install -y chromium` (or set CHROMIUM to its path)");
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  if (!existsSync(binary)) {
    console.log(`FAIL no catchment binary at ${binary}: run \`cargo build -p catchment-cli\` first`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "catchment-e2e-"));
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  const errors = [];
  try {
    const a = await startNode(dir, "Ada");
    const b = await startNode(dir, "Bo");
    const viewport = { width: 1280, height: 900 };
    const ctxA = await browser.newContext({ viewport });
    const ctxB = await browser.newContext({ viewport });
    const pageA = await ctxA.newPage();
    const pageB = await ctxB.newPage();
    for (const page of [pageA, pageB]) {
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      page.on("dialog", (d) => {
        // Only the confirmations of destructive buttons are expected.
        if (d.type() === "confirm" && page.expectConfirm) {
          page.expectConfirm = false;
          d.accept();
          return;
        }
        errors.push(`dialog opened: ${d.message()}`);
        d.dismiss();
      });
    }
    let topicUrl = "";
    let invite = "";

    await step("a page without a session is refused", async () => {
      const response = await pageA.goto(`${a.base}/`);
      if (response.status() !== 401) fail(`status ${response.status()}`);
      await pageA.getByText("catchment open").waitFor({ timeout: SHORT });
    });

    await step("catchment open logs in with a one-time code", async () => {
      const url = cli(a.home, "open", "--no-browser").trim();
      if (!url.startsWith(`${a.base}/login?code=`)) fail(`unexpected URL ${url}`);
      if (url.includes(readFileSync(join(a.home, "api.token"), "utf8").trim())) fail("the token is in the URL");
      await pageA.goto(url);
      if (new URL(pageA.url()).pathname !== "/") fail(`landed on ${pageA.url()}`);
      const cookies = await ctxA.cookies();
      const session = cookies.find((c) => c.name.startsWith("catchment_session_"));
      if (!session || !session.httpOnly || session.sameSite !== "Strict") fail(`cookie ${JSON.stringify(session)}`);
      // The same code works only once.
      const other = await browser.newContext();
      const again = await (await other.newPage()).goto(url);
      if (again.status() !== 401) fail(`a used code answered ${again.status()}`);
      await other.close();
      await pageB.goto(cli(b.home, "open", "--no-browser").trim());
    });

    await step("the keyboard reaches the skip link first", async () => {
      await pageA.keyboard.press("Tab");
      const focused = await pageA.evaluate(() => document.activeElement.className);
      if (focused !== "skip") fail(`first Tab focused ${focused}`);
    });

    await step("A creates a topic", async () => {
      await pageA.fill("#create-name", "Platform team");
      await pageA.click("button:has-text('Create')");
      await pageA.waitForURL(/\/t\/[0-9a-f]{64}$/, { timeout: SHORT });
      topicUrl = new URL(pageA.url()).pathname;
      await pageA.getByRole("heading", { name: "Platform team" }).waitFor({ timeout: SHORT });
    });

    await step("A makes an invite, shown as text and a QR code", async () => {
      await pageA.click("nav >> text=Admin");
      await pageA.fill("#invite-uses", "3");
      await pageA.click("#create-invite");
      invite = (await pageA.inputValue("#invite-text")).trim();
      if (!invite.startsWith("catchment1")) fail(`invite ${invite.slice(0, 20)}`);
      if ((await pageA.locator("figure.qr svg path").count()) !== 1) fail("no QR code");
      await shot(pageA, "admin-invite");
    });

    await step("a bad invite is refused in words, next to the field, keeping what was typed", async () => {
      await pageB.goto(`${b.base}/`);
      await pageB.fill("#join-invite", "catchment1thisisnotaninvite");
      await pageB.click("button:has-text('Join')");
      const error = await pageB.locator("#join-invite-error").textContent({ timeout: SHORT });
      if (!/invite/i.test(error)) fail(`error reads ${error}`);
      if ((await pageB.inputValue("#join-invite")) !== "catchment1thisisnotaninvite") fail("the typed invite was lost");
      if ((await pageB.getAttribute("#join-invite", "aria-invalid")) !== "true") fail("field not marked invalid");
      await shot(pageB, "join-bad-invite");
    });

    await step("B joins by pasting the invite", async () => {
      await pageB.fill("#join-invite", invite);
      await pageB.click("button:has-text('Join')");
      await pageB.waitForURL(new RegExp(`${topicUrl}$`), { timeout: SHORT });
      await pageB.getByRole("heading", { name: "Platform team" }).waitFor({ timeout: SHORT });
    });

    await step("B's post appears in A's open feed without a reload", async () => {
      await pageA.goto(`${a.base}${topicUrl}`);
      await pageA.waitForFunction(() => document.body.dataset.stream === "open", null, { timeout: SHORT });
      await pageA.evaluate(() => { window.__sameDocument = true; });
      await pageB.click("summary:has-text('New idea')");
      await pageB.selectOption("#post-kind", "idea");
      await pageB.fill("#post-title", "Cache target/ between CI runs");
      await pageB.fill("#post-body", "It cut our **build** from 40 to 12 minutes.");
      await pageB.fill("#post-tags", "ci, build");
      await pageB.click("form.post button[type=submit]");
      await pageB.locator("#feed-list >> text=Cache target/ between CI runs").waitFor({ timeout: SHORT });
      await pageA.locator("#feed-list >> text=Cache target/ between CI runs").waitFor({ timeout: SYNC });
      if (!(await pageA.evaluate(() => window.__sameDocument === true))) fail("A's page was reloaded");
      await shot(pageA, "feed");
    });

    let before = 0;
    const scoreOf = async (page) => {
      const row = page.locator("#leaderboard tr", { hasText: "Bo" });
      return Number(await row.locator("td.score").textContent({ timeout: SHORT }));
    };

    await step("A endorses B's post and gives kudos; B's profile and the leaderboard change", async () => {
      await pageA.goto(`${a.base}${topicUrl}/leaderboard`);
      before = await scoreOf(pageA);
      await pageB.goto(`${b.base}${topicUrl}`); // B keeps a page open for notifications
      await pageB.waitForFunction(() => document.body.dataset.stream === "open", null, { timeout: SHORT });
      await pageA.goto(`${a.base}${topicUrl}`);
      await pageA.click("button[aria-label^='Endorse “Cache target/'][aria-label$='+1']");
      await pageA.waitForURL(new RegExp(`${topicUrl}$`), { timeout: SHORT });
      await pageA.locator("#feed-list article", { hasText: "Cache target/" }).locator("text=score 1").waitFor({ timeout: SHORT });
      await pageA.click("#feed-list a.who:has-text('Bo')");
      await pageA.fill("#kudos-note", "The cache tip saved us hours");
      await pageA.click("button:has-text('Give kudos')");
      await pageA.locator(".kudos-list >> text=The cache tip saved us hours").waitFor({ timeout: SHORT });
      const kudos = await pageA.textContent("#kudos-count");
      const endorsement = await pageA.textContent("#endorsement");
      if (kudos !== "1" || endorsement !== "1") fail(`profile shows kudos ${kudos}, endorsement ${endorsement}`);
      await shot(pageA, "profile");
      await pageA.goto(`${a.base}${topicUrl}/leaderboard`);
      const after = await scoreOf(pageA);
      if (!(after > before)) fail(`Bo's score went from ${before} to ${after}`);
      await shot(pageA, "leaderboard");
    });

    await step("B is notified of the endorsement and the kudos, live", async () => {
      await pageB.locator("#toasts >> text=gave you kudos").waitFor({ timeout: SYNC });
      await pageB.goto(`${b.base}/notifications`);
      await pageB.locator(".notices >> text=was endorsed (+1)").waitFor({ timeout: SHORT });
      await pageB.locator(".notices >> text=Ada gave you kudos: The cache tip saved us hours").waitFor({ timeout: SHORT });
      await shot(pageB, "notifications");
      await eventually(pageB, `${b.base}${topicUrl}/m/me`, async () => (await pageB.textContent("#kudos-count")) === "1", "B's own profile shows the kudos");
    });

    await step("a contribution carrying a script and an event handler runs nothing", async () => {
      await pageB.goto(`${b.base}${topicUrl}`);
      await pageB.click("summary:has-text('New idea')");
      await pageB.fill("#post-title", "Sneaky <img src=x onerror=\"window.__xss=1\">");
      await pageB.fill(
        "#post-body",
        "<script>window.__xss=2</script>\n\nhello <img src=x onerror=\"window.__xss=3\"> [click](javascript:window.__xss=4)\n\n<svg onload=\"window.__xss=5\"></svg>",
      );
      await pageB.click("form.post button[type=submit]");
      const link = pageA.locator("#feed-list a.title", { hasText: "Sneaky" });
      await pageA.goto(`${a.base}${topicUrl}`);
      await link.waitFor({ timeout: SYNC });
      await link.click();
      await pageA.locator("article.entry .body", { hasText: "<script>window.__xss=2</script>" }).waitFor({ timeout: SHORT });
      await pageA.waitForTimeout(500);
      const seen = await pageA.evaluate(() => ({
        xss: window.__xss,
        scripts: document.querySelectorAll("main script").length,
        images: document.querySelectorAll("main img").length,
        handlers: document.querySelectorAll("main [onerror], main [onload]").length,
        jsLinks: document.querySelectorAll("main a[href^='javascript']").length,
      }));
      if (seen.xss !== undefined || seen.scripts || seen.images || seen.handlers || seen.jsLinks) {
        fail(`peer markup became live: ${JSON.stringify(seen)}`);
      }
      await shot(pageA, "thread-escaped");
    });

    await step("a thread: B's question, A's answer accepted and ranked first", async () => {
      await pageB.goto(`${b.base}${topicUrl}`);
      await pageB.click("summary:has-text('New idea')");
      await pageB.selectOption("#post-kind", "question");
      await pageB.fill("#post-title", "How do we cut CI time?");
      await pageB.fill("#post-body", "40 minutes per push");
      await pageB.click("form.post button[type=submit]");
      const link = pageA.locator("#feed-list a.title", { hasText: "How do we cut CI time?" });
      await pageA.goto(`${a.base}${topicUrl}`);
      await link.waitFor({ timeout: SYNC });
      await link.click();
      await pageA.fill("textarea[id^='reply-answer-']", "Run the tests in parallel");
      await pageA.click("button:has-text('Post answer')");
      await pageA.locator(".replies .body", { hasText: "Run the tests in parallel" }).waitFor({ timeout: SHORT });
      const threadPath = new URL(pageA.url()).pathname;
      await eventually(pageB, `${b.base}${threadPath}`, async () => (await pageB.locator("button:has-text('Accept this answer')").count()) === 1, "A's answer on B's node");
      await eventually(pageB, `${b.base}/notifications`, async () => (await pageB.locator(".notices >> text=New answer to your question “How do we cut CI time?”").count()) === 1, "B told of the answer to its question");
      await pageB.goto(`${b.base}${threadPath}`);
      await pageB.click("button:has-text('Accept this answer')");
      await pageB.locator(".accepted-answer .body", { hasText: "Run the tests in parallel" }).waitFor({ timeout: SHORT });
      await shot(pageB, "thread");
      await pageA.goto(`${a.base}/notifications`);
      await eventually(pageA, `${a.base}/notifications`, async () => (await pageA.locator(".notices >> text=was accepted").count()) === 1, "A told its answer was accepted");
    });

    await step("B goes offline, posts, comes back, and the post reaches A", async () => {
      await pageB.goto(`${b.base}/network`);
      await pageB.click("#go-offline");
      await pageB.locator("#net-state >> text=will sync when a peer is reachable").waitFor({ timeout: SHORT });
      await shot(pageB, "network-offline");
      await pageB.goto(`${b.base}${topicUrl}`);
      await pageB.locator(".offline >> text=saved here").waitFor({ timeout: SHORT });
      await pageB.click("summary:has-text('New idea')");
      await pageB.fill("#post-title", "Written while offline");
      await pageB.click("form.post button[type=submit]");
      await pageB.locator("#feed-list >> text=Written while offline").waitFor({ timeout: SHORT });
      // While B is offline, A must not get it (several sync intervals).
      await pageA.goto(`${a.base}${topicUrl}`);
      await pageA.waitForTimeout(6_000);
      if ((await pageA.locator("#feed-list >> text=Written while offline").count()) !== 0) fail("A got it while B was offline");
      await pageB.goto(`${b.base}/network`);
      await pageB.click("#go-online");
      await pageB.locator("#net-state >> text=Online.").waitFor({ timeout: SHORT });
      await pageA.locator("#feed-list >> text=Written while offline").waitFor({ timeout: SYNC });
      await eventually(pageB, `${b.base}/network`, async () => (await pageB.locator("table.sync >> text=in agreement").count()) > 0, "B's network page shows a peer in agreement");
      await shot(pageB, "network");
    });

    await step("A opens an ask; B is told it closes soon and responds before the deadline", async () => {
      await pageA.goto(`${a.base}${topicUrl}/admin`);
      await pageA.fill("#ask-title", "Ideas to cut build time");
      await pageA.fill("#ask-body", "Anything that makes CI faster.");
      await pageA.fill("#ask-hours", "2");
      await pageA.click("button:has-text('Open the ask')");
      await pageA.locator("#asks >> text=Ideas to cut build time").waitFor({ timeout: SHORT });
      await pageB.goto(`${b.base}${topicUrl}`);
      await eventually(pageB, `${b.base}/notifications`, async () => (await pageB.locator(".notices >> text=“Ideas to cut build time” closes in 2 h").count()) === 1, "B told the ask closes soon");
      await pageB.goto(`${b.base}${topicUrl}/asks`);
      await pageB.click("summary:has-text('Respond with an idea')");
      await pageB.fill("input[id$='-title']", "Split the test suite by crate");
      await pageB.click("button:has-text('Respond')");
      await pageB.locator("#feed-list >> text=Split the test suite by crate").waitFor({ timeout: SHORT });
      await shot(pageB, "asks-response");
    });

    await step("A filters the feed by ask and searches it by words", async () => {
      await pageA.goto(`${a.base}${topicUrl}`);
      await pageA.locator("#feed-list >> text=Split the test suite by crate").waitFor({ timeout: SYNC });
      await pageA.selectOption("#f-ask", { label: "Ideas to cut build time" });
      await pageA.click("form.filters button[type=submit]");
      await pageA.waitForURL(/[?&]ask=[0-9a-f]/, { timeout: SHORT });
      const byAsk = await pageA.locator("#feed-list a.title").allTextContents();
      if (byAsk.join("|") !== "Split the test suite by crate") fail(`ask filter shows ${byAsk.join(", ")}`);
      await pageA.goto(`${a.base}${topicUrl}`);
      await pageA.fill("#f-q", "PARALLEL tests");
      await pageA.click("form.filters button[type=submit]");
      const found = await pageA.locator("#feed-list a.title").allTextContents();
      if (found.join("|") !== "Run the tests in parallel") fail(`search shows ${found.join(", ")}`);
      await pageA.goto(`${a.base}${topicUrl}?kind=question`);
      const questions = await pageA.locator("#feed-list .kind").allTextContents();
      if (!questions.length || questions.some((k) => k !== "question")) fail(`kind filter shows ${questions.join(", ")}`);
      await shot(pageA, "feed-filtered");
    });

    await step("B edits its own idea, a failed edit keeps what was typed, then B retracts it", async () => {
      await pageB.goto(`${b.base}${topicUrl}`);
      await pageB.click("#feed-list a.title:has-text('Written while offline')");
      await pageB.click("summary:has-text('Edit')");
      await pageB.fill("input[id^='edit-title-']", "Written while offline, then edited");
      await pageB.fill("input[id^='edit-tags-']", "ok, wow!!");
      await pageB.click("details.edit button:has-text('Save')");
      const error = await pageB.locator("#edit-tag-error").textContent({ timeout: SHORT });
      if (!error.includes("wow!!")) fail(`error reads ${error}`);
      if ((await pageB.inputValue("input[id^='edit-tags-']")) !== "ok, wow!!") fail("the typed tags were lost");
      if ((await pageB.inputValue("input[id^='edit-title-']")) !== "Written while offline, then edited") fail("the typed title was lost");
      await shot(pageB, "edit-error");
      await pageB.fill("input[id^='edit-tags-']", "ok");
      await pageB.click("details.edit button:has-text('Save')");
      await pageB.getByRole("heading", { name: "Written while offline, then edited" }).waitFor({ timeout: SHORT });
      await pageA.goto(`${a.base}${topicUrl}`);
      await pageA.locator("#feed-list >> text=Written while offline, then edited").waitFor({ timeout: SYNC });
      pageB.expectConfirm = true;
      await pageB.click("button:has-text('Retract')");
      await pageB.waitForURL(new RegExp(`${topicUrl}$`), { timeout: SHORT });
      if ((await pageB.locator("#feed-list >> text=then edited").count()) !== 0) fail("a retracted idea is still in the feed");
      await pageA.locator("#feed-list >> text=then edited").waitFor({ state: "detached", timeout: SYNC });
    });

    await step("an admin changes a weight and revokes the invite", async () => {
      await pageA.goto(`${a.base}${topicUrl}/leaderboard`);
      const before = await scoreOf(pageA);
      await pageA.goto(`${a.base}${topicUrl}/admin`);
      await pageA.fill("#weights-kudos", "5000");
      await pageA.click("button:has-text('Save weights')");
      const error = await pageA.locator("#weights-kudos-error").textContent({ timeout: SHORT });
      if (!/0 to 1000/.test(error)) fail(`error reads ${error}`);
      if ((await pageA.inputValue("#weights-kudos")) !== "5000") fail("the typed weight was lost");
      await pageA.fill("#weights-kudos", "8");
      await pageA.click("button:has-text('Save weights')");
      await pageA.goto(`${a.base}${topicUrl}/leaderboard`);
      await pageA.locator("table.weights tr", { hasText: "per kudos received" }).locator("text=8").waitFor({ timeout: SHORT });
      const after = await scoreOf(pageA);
      if (after !== before + 3) fail(`Bo's score went from ${before} to ${after} when kudos went from 5 to 8 points`);
      await pageA.goto(`${a.base}${topicUrl}/admin`);
      await pageA.click("button[aria-label^='Revoke invite']");
      await pageA.locator("table.invites >> text=revoked").waitFor({ timeout: SHORT });
    });

    await step("the other main pages render, at 1280 px and at phone width", async () => {
      for (const [name, path] of [["feed-later", topicUrl], ["topics", "/"], ["asks", `${topicUrl}/asks`], ["admin", `${topicUrl}/admin`]]) {
        const response = await pageA.goto(`${a.base}${path}`);
        if (response.status() !== 200) fail(`${path} answered ${response.status()}`);
        await shot(pageA, name);
      }
      await pageA.setViewportSize({ width: 390, height: 844 });
      await pageA.goto(`${a.base}${topicUrl}`);
      const overflow = await pageA.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 1) fail(`the feed is ${overflow} px wider than a phone screen`);
      await shot(pageA, "feed-phone");
    });

    await step("no script errors and no dialogs on any page", async () => {
      if (errors.length) fail(errors.join("; "));
    });
  } catch (error) {
    if (process.env.E2E_DEBUG) console.error(error);
    for (const [i, page] of browser.contexts().flatMap((c) => c.pages()).entries()) {
      await page.screenshot({ path: join(shots, `failure-${i}.png`), fullPage: true }).catch(() => {});
    }
    for (const node of nodes) {
      console.log(`--- log of node ${node.name} (last lines)`);
      console.log(node.log.join("").split("\n").slice(-20).join("\n"));
    }
  } finally {
    await browser.close();
    await stopNodes();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`screenshots in ${shots}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch(async (error) => {
  console.log(`FAIL ${error.message}`);
  await stopNodes();
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
