// The web console in headless Chromium (run by integration/web/run.sh, which starts two
// zonesd and passes them in the environment): URL_A, URL_B, TOKEN_A, TOKEN_B, STUB_B (an
// etherstub on B), ARTEFACTS (screenshots), CHROMIUM (the browser), WEB_DIR (web/, whose
// node_modules holds playwright-core). Each step is bounded; the first failure stops the
// test with a screenshot. Prints "integration: N passed, N failed (web/browser)".
import { createRequire } from "node:module";
import { copyFileSync } from "node:fs";

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`browser.test: ${k} is not set (run integration/web/run.sh)`);
    process.exit(2);
  }
  return v;
};
const [urlA, urlB, tokenA, tokenB, stubB, artefacts, chromiumPath, webDir] =
  ["URL_A", "URL_B", "TOKEN_A", "TOKEN_B", "STUB_B", "ARTEFACTS", "CHROMIUM", "WEB_DIR"].map(env);
const withConsole = process.env.ZONESD_WEB_CONSOLE !== "0";
const { chromium } = createRequire(`${webDir}/package.json`)("playwright-core");

let passed = 0;
let failed = 0;
const pageErrors = [];
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  timeout: 60_000,
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(30_000);
page.on("pageerror", (e) => pageErrors.push(String(e)));
// Script errors count; the browser's own line for an HTTP error status does not (a stats poll
// racing a halt gets its 409, which the page handles).
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(`console: ${m.text()}`);
});
page.on("dialog", (d) => d.accept());

const shot = async (name) => {
  const path = `${artefacts}/${name}.png`;
  await page.screenshot({ path, fullPage: true }).catch((e) => console.error(`screenshot ${name}: ${e}`));
  return path;
};

async function step(name, f) {
  const t0 = Date.now();
  try {
    await f();
    passed++;
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
    const errs = await page.locator(".error").allTextContents().catch(() => []);
    if (errs.some((t) => t)) console.log(`     the page says: ${errs.filter((t) => t).join(" | ")}`);
    if (pageErrors.length) console.log(`     page errors: ${pageErrors.join(" | ")}`);
    await shot(`failed-${name.replace(/\W+/g, "-")}`);
    throw e;
  }
}

const hostB = () => page.locator('section.host[data-host="b"]');
const zoneRow = () => hostB().locator('tr.zone[data-alias="webtest"]');

try {
  await step("the console loads from A with its CSP", async () => {
    const resp = await page.goto(`${urlA}/`, { waitUntil: "load" });
    const csp = resp.headers()["content-security-policy"] || "";
    if (!csp.includes("script-src 'self'")) throw new Error(`CSP: ${csp}`);
    await page.locator("#add-host").waitFor();
    await page.locator("p.empty").waitFor();
  });

  await step("both hosts added (B cross-origin)", async () => {
    for (const [name, url, token] of [["a", urlA, tokenA], ["b", urlB, tokenB]]) {
      const f = page.locator("#add-host");
      await f.locator('input[name="name"]').fill(name);
      await f.locator('input[name="url"]').fill(url);
      await f.locator('input[name="token"]').fill(token);
      await f.locator('button[type="submit"]').click();
    }
    for (const name of ["a", "b"]) {
      await page.locator(`section.host[data-host="${name}"] .status[data-ok="true"]`).waitFor();
    }
    // The image and the etherstub of B fill the form's choices.
    await hostB().locator('select[name="image_uuid"] option').first().waitFor({ state: "attached" });
    await hostB().locator(`select[name="nic_tag"] option[value="${stubB}"]`).waitFor({ state: "attached" });
    // Kept in localStorage: a reload shows them again.
    await page.reload();
    await page.locator('section.host[data-host="b"] .status[data-ok="true"]').waitFor();
    await shot("1-hosts");
  });

  await step("a zone created and booted through B's form", async () => {
    const f = hostB().locator("form.create-zone");
    await f.locator('input[name="alias"]').fill("webtest");
    await f.locator('input[name="ram"]').fill("128");
    await f.locator('input[name="cpu_cap"]').fill("50");
    await f.locator('select[name="nic_tag"]').selectOption(stubB);
    await f.locator('input[name="ip"]').fill("10.219.7.5");
    await f.locator('input[name="netmask"]').fill("255.255.255.0");
    await f.locator('button[type="submit"]').click();
    await zoneRow().and(page.locator('[data-state="running"]')).waitFor({ timeout: 180_000 });
    const cells = await zoneRow().locator("td").allTextContents();
    if (!cells.includes("128") || !cells.includes("50")) throw new Error(`caps not shown: ${cells}`);
    // Not on A.
    const onA = await page.locator('section.host[data-host="a"] tr.zone').count();
    if (onA !== 0) throw new Error(`${onA} zones on A`);
  });

  await step("its live chart has at least 2 points", async () => {
    await zoneRow().locator("button.details").click();
    await page.waitForFunction(
      () => Number(document.querySelector('section.host[data-host="b"] .charts')?.dataset.points || 0) >= 2,
      null,
      { timeout: 30_000 },
    );
    await shot("2-charts");
  });

  await step("a snapshot taken from its details", async () => {
    const f = hostB().locator("form.snapshot");
    await f.locator('input[name="name"]').fill("web1");
    await f.locator('button[type="submit"]').click();
    await hostB().locator("ul.snapshots li", { hasText: "web1" }).waitFor({ timeout: 60_000 });
  });

  if (withConsole) {
    await step("a command typed into its console, and its output", async () => {
      await zoneRow().locator("button.console").click();
      await page.locator('#console[data-state="connected"]').waitFor({ timeout: 15_000 });
      const term = page.locator("#terminal .xterm-rows");
      await page.locator("#terminal .xterm-helper-textarea").focus();
      // busybox's askfirst wants Enter first; then the command (its echo is not the output).
      const until = Date.now() + 30_000;
      let text = "";
      await page.keyboard.press("Enter");
      await page.waitForTimeout(500);
      await page.keyboard.type("echo zonesd-$((6*7))\n", { delay: 10 });
      while (Date.now() < until) {
        text = (await term.textContent()) || "";
        if (text.includes("zonesd-42")) break;
        await page.waitForTimeout(250);
      }
      if (!text.includes("zonesd-42")) throw new Error(`no zonesd-42 on the console: ${JSON.stringify(text.slice(-400))}`);
      // The terminal's size reached the zone's console (the page's resize frame).
      await page.keyboard.type("stty size\n", { delay: 10 });
      const sized = Date.now() + 15_000;
      while (Date.now() < sized) {
        text = (await term.textContent()) || "";
        if (text.includes("18 100")) break;
        await page.waitForTimeout(250);
      }
      if (!text.includes("18 100")) throw new Error(`stty size is not 18 100: ${JSON.stringify(text.slice(-300))}`);
      await page.evaluate(() => window.scrollTo(0, 0));
      const path = await shot("3-console");
      if (process.env.SCREENSHOT_TO) copyFileSync(path, process.env.SCREENSHOT_TO);
      await page.locator("#console-close").click();
    });
  } else {
    failed++;
    console.log("FAIL **************************************************************");
    console.log("FAIL the zone console step was LEFT OUT (ZONESD_WEB_CONSOLE=0): the console");
    console.log("FAIL WebSocket is not in this zonesd; counted as a failure");
    console.log("FAIL **************************************************************");
  }

  await step("rolled back to a snapshot and the snapshot deleted, from its details", async () => {
    if (!(await hostB().locator("ul.snapshots").isVisible())) {
      await zoneRow().locator("button.details").click();
    }
    const li = (n) => hostB().locator(`ul.snapshots li[data-snapshot="${n}"]`);
    const f = hostB().locator("form.snapshot");
    await f.locator('input[name="name"]').fill("web2");
    await f.locator('button[type="submit"]').click();
    await li("web2").waitFor({ timeout: 60_000 });
    // Back to web1: recursive (web2 is newer and goes); the running zone is booted again.
    await li("web1").locator("button.rollback").click();
    await li("web2").waitFor({ state: "detached", timeout: 180_000 });
    await zoneRow().and(page.locator('[data-state="running"]')).waitFor({ timeout: 180_000 });
    await li("web1").locator("button.delete-snapshot").click();
    await li("web1").waitFor({ state: "detached", timeout: 60_000 });
    await shot("4-snapshots");
  });

  await step("halted through its button", async () => {
    await zoneRow().locator("button.halt").click();
    await zoneRow().and(page.locator('[data-state="stopped"]')).waitFor({ timeout: 120_000 });
  });

  await step("deleted", async () => {
    await zoneRow().locator("button.delete").click();
    await zoneRow().waitFor({ state: "detached", timeout: 120_000 });
    await shot("5-deleted");
  });

  await step("no page errors", async () => {
    if (pageErrors.length) throw new Error(pageErrors.join(" | "));
  });
} catch {
  // Reported by step(); the run ends here.
} finally {
  await browser.close().catch(() => {});
}
console.log(`integration: ${passed} passed, ${failed} failed (web/browser)`);
process.exit(failed ? 1 : 0);
