// Browser test of the web page served by `arc2face serve` (started by scripts/browser_test.sh):
// headless Debian chromium driven by playwright-core. It checks the LCM toggle, a photo without a face (plain
// error), the LCM error of a server without --lcm-lora, upload by file chooser and by drag and drop (two photos,
// one identity, face boxes), the pose image input (shown when the server has the ControlNet: preview, clear,
// control-scale slider), a generation with live progress that sends the pose image, the gallery (seeds, ID
// similarity, downloads), and saves a screenshot. Exit status 0 on success.
//
// Environment: A2F_URL (http://127.0.0.1:PORT), A2F_PHOTO, A2F_PHOTO2 (photos with a face), A2F_NOFACE (a photo
// without one), A2F_POSE (an image to use as the pose condition), A2F_SCREENSHOT (PNG to write), CHROMIUM
// (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const url = process.env.A2F_URL;
const photo = process.env.A2F_PHOTO;
const photo2 = process.env.A2F_PHOTO2;
const noface = process.env.A2F_NOFACE;
const pose = process.env.A2F_POSE;
const screenshot = process.env.A2F_SCREENSHOT;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
for (const [k, v] of Object.entries({ A2F_URL: url, A2F_PHOTO: photo, A2F_PHOTO2: photo2, A2F_NOFACE: noface, A2F_POSE: pose,
                                      A2F_SCREENSHOT: screenshot })) {
  if (!v) { console.error(`${k} is not set`); process.exit(2); }
}

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

async function value(page, sel) { return page.$eval(sel, (e) => e.value); }

async function setRange(page, sel, v) {
  await page.$eval(sel, (e, v) => { e.value = String(v); e.dispatchEvent(new Event("input", { bubbles: true })); }, v);
}

// Drops a file on the drop zone the way a browser does (DataTransfer with a File).
async function dropFile(page, path, type) {
  const b64 = readFileSync(path).toString("base64");
  const name = basename(path);
  await page.evaluate(({ b64, name, type }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type }));
    const dz = document.getElementById("dropzone");
    for (const t of ["dragenter", "dragover", "drop"]) {
      dz.dispatchEvent(new DragEvent(t, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, { b64, name, type });
}

const mime = (p) => (p.endsWith(".png") ? "image/png" : p.endsWith(".webp") ? "image/webp" : "image/jpeg");

const userDataDir = mkdtempSync(join(tmpdir(), "a2f-chromium-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  const page = context.pages()[0] || (await context.newPage());
  const consoleErrors = [];
  // The 400 and 422 answers are provoked below (no face, LCM refused); any other console error is a failure.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (400|422) /.test(m.text())) consoleErrors.push(m.text());
  });
  // Count the server-sent events the page receives.
  await page.addInitScript(() => {
    window.a2fEvents = [];
    const Orig = window.EventSource;
    window.EventSource = class extends Orig {
      constructor(...args) {
        super(...args);
        for (const t of ["progress", "done"]) this.addEventListener(t, () => window.a2fEvents.push(t));
      }
    };
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => document.getElementById("num-images").max !== "4" ||
                                   document.getElementById("steps-out").textContent !== "");
  check((await page.title()).includes("Arc2Face"), "the page loads");

  // The LCM toggle switches the defaults both ways (the official demo's values).
  await page.click("#advanced summary");
  check(await value(page, "#steps") === "25" && await value(page, "#guidance") === "3", "defaults 25 steps / 3.0");
  await page.check("#lcm");
  check(await value(page, "#steps") === "3" && await value(page, "#guidance") === "1", "LCM on: 3 steps / 1.0");
  check(await page.$eval("#steps", (e) => e.max) === "20", "LCM on: steps up to 20");
  await page.uncheck("#lcm");
  check(await value(page, "#steps") === "25" && await value(page, "#guidance") === "3", "LCM off: 25 / 3.0");

  // A photo without a face: a plain error on its card, and Submit stays disabled.
  await page.setInputFiles("#file-input", noface);
  await page.waitForSelector(".photo.bad");
  const badText = await page.textContent(".photo.bad .status");
  check(/no face found/.test(badText) && /more margin/.test(badText), `no-face error shown: "${badText}"`);
  check(await page.isDisabled("#submit"), "Submit is disabled without a usable photo");
  await page.click(".photo.bad .remove");

  // Upload by file chooser and by drag and drop: two photos, one identity, face boxes drawn.
  await page.setInputFiles("#file-input", photo);
  await dropFile(page, photo2, mime(photo2));
  await page.waitForFunction(() => document.querySelectorAll(".photo.ok").length === 2, null, { timeout: 60000 });
  await page.waitForSelector("#identity-note:not([hidden])");
  check((await page.textContent("#identity-note")).includes("of 2 photos"), "two photos are combined into one identity");
  const boxed = await page.$$eval(".photo.ok canvas", (cs) => cs.every((c) => {
    // The chosen face's box is drawn in green (#2fdc6b): look for such pixels.
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 0x2f && d[i + 1] === 0xdc && d[i + 2] === 0x6b) return true;
    return false;
  }));
  check(boxed, "the detected face box is drawn on each upload");

  // LCM without --lcm-lora: the request carries lcm:true and the server's message is shown plainly.
  const lcmAvailable = await page.evaluate(async () => (await (await fetch("/v1/config")).json()).lcm_available);
  if (!lcmAvailable) {
    await page.check("#lcm");
    await page.click("#submit");
    await page.waitForSelector("#error:not([hidden])");
    const err = await page.textContent("#error");
    check(err.includes("this server was started without --lcm-lora"), `LCM refusal shown: "${err}"`);
    await page.uncheck("#lcm");
  }

  // The pose image input: shown only when the server has the ControlNet; preview, clear, control scale.
  const cfg = await page.evaluate(async () => (await fetch("/v1/config")).json());
  check(await page.isVisible("#pose-box") === cfg.controlnet_available,
        `pose input ${cfg.controlnet_available ? "shown" : "hidden"} (server controlnet_available: ${cfg.controlnet_available})`);
  if (cfg.controlnet_available) {
    check(await page.isDisabled("#control-scale"), "control scale is disabled without a pose image");
    await page.setInputFiles("#pose-input", pose);
    await page.waitForFunction(() => {
      const i = document.getElementById("pose-img");
      return !document.getElementById("pose-preview").hidden && i.complete && i.naturalWidth > 0;
    });
    check((await page.textContent("#pose-name")) === basename(pose), "pose preview and file name shown");
    await page.click("#pose-clear");
    check(await page.isHidden("#pose-preview") && await page.isDisabled("#control-scale"), "pose image cleared");
    await page.setInputFiles("#pose-input", pose);
    await page.waitForSelector("#pose-preview:not([hidden])");
    await setRange(page, "#control-scale", 0.8);
    check(await page.textContent("#control-scale-out") === "0.80", "control scale slider shows 0.80");
  }

  // Generate: 2 images, fixed seed, few steps; live progress via server-sent events.
  await setRange(page, "#steps", 3);
  await setRange(page, "#num-images", 2);
  await page.uncheck("#randomize");
  await page.fill("#seed", "42");
  const fractions = [];
  await page.exposeFunction("a2fProgress", (f) => fractions.push(f));
  await page.evaluate(() => {
    const p = document.getElementById("progress");
    const tick = () => { window.a2fProgress(p.value); if (!document.querySelector(".gallery figure")) setTimeout(tick, 20); };
    tick();
  });
  const [generateRequest, generateResponse] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith("/v1/generate") && r.method() === "POST"),
    page.waitForResponse((r) => r.url().endsWith("/v1/generate")),
    page.click("#submit"),
  ]);
  if (cfg.controlnet_available) {
    // (Chromium may not expose a body with a file in it; the job's params below are the real check.)
    const body = generateRequest.postDataBuffer();
    if (body) {
      const sent = body.toString("latin1");
      check(sent.includes('name="pose_image"') && /name="control_scale"\r\n\r\n0\.8\r\n/.test(sent),
            "the request carries the pose image and control scale 0.8");
    }
    const job = await generateResponse.json();
    check(job.params && job.params.pose_image && job.params.control_scale === 0.8,
          `the job uses the pose image: ${JSON.stringify(job.params && job.params.pose_image)}`);
  }
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll(".gallery figure img")];
    return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 120000 });
  check(true, "two generated images appear in the gallery");
  check(Math.max(...fractions) === 1, `the progress bar reached the end`);
  const events = await page.evaluate(() => window.a2fEvents);
  check(events.length >= 1 && events[events.length - 1] === "done", `server-sent events received: ${events.join(",")}`);
  check((await page.textContent("#progress-text")).startsWith("done"), "progress reports done");
  const captions = await page.$$eval(".gallery figcaption", (fs) => fs.map((f) => f.textContent));
  check(captions[0].includes("seed 42") && captions[1].includes("seed 43"), `seeds shown: ${captions.join(" | ")}`);
  check(captions.every((c) => c.includes("ID similarity")), "ID similarity shown for each image");
  const hrefs = await page.$$eval(".gallery a[download]", (as) => as.map((a) => [a.href, a.download]));
  check(hrefs.length === 2 && hrefs[0][1] === "arc2face_seed42.png", `download links: ${hrefs.map((h) => h[1])}`);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click(".gallery a[download]")]);
  const path = await download.path();
  const png = readFileSync(path);
  check(png.subarray(1, 4).toString() === "PNG", `download is a PNG (${png.length} bytes)`);
  check(!(await page.isVisible("#error")), "no error shown");
  check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ": " + consoleErrors.join("; ") : ""}`);

  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} catch (e) {
  failed = true;
  console.error(String(e && e.stack ? e.stack : e));
  try {
    const page = context && context.pages()[0];
    if (page) await page.screenshot({ path: screenshot.replace(/\.png$/, "") + "-failed.png", fullPage: true });
  } catch (_) { /* best effort */ }
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
