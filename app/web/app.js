// The arc2face web page: photos in (drag and drop, several per identity), face boxes shown, an optional pose
// image (when the server has the ControlNet), generation with live progress (server-sent events), gallery with
// seeds, ID similarity and downloads. Plain JS, no build step;
// it talks only to the JSON API described at /openapi.json.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  photos: [],       // {id, blob, name, card, status: "analyzing"|"ok"|"bad", analysis, error}
  nextPhotoId: 1,
  pose: null,       // {blob, name, url}: the pose image sent with the request (ControlNet)
  job: null,        // the job being followed
  events: null,     // its EventSource
  pollTimer: null,
};

// ---- small helpers ---------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// The error message of an API answer (JSON {"error": {"message"}}), or a generic one.
async function errorMessage(response) {
  try {
    const j = await response.json();
    if (j && j.error && j.error.message) return j.error.message;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function fmt(x, digits) { return Number(x).toFixed(digits); }

// ---- configuration and the options form -------------------------------------------------------------------

function syncOutputs() {
  $("steps-out").textContent = $("steps").value;
  $("guidance-out").textContent = fmt($("guidance").value, 1);
  $("num-images-out").textContent = $("num-images").value;
  $("control-scale-out").textContent = fmt($("control-scale").value, 2);
}

// The LCM toggle switches the defaults like the official demo: 3 steps / guidance 1.0 (steps up to 20) with
// LCM-LoRA, 25 steps / guidance 3.0 (steps up to 100) without.
function applyLcmDefaults() {
  const d = (state.config && state.config.defaults) || {steps: 25, guidance: 3, lcm_steps: 3, lcm_guidance: 1};
  const maxSteps = (state.config && state.config.limits.max_steps) || 100;
  if ($("lcm").checked) {
    $("steps").max = String(Math.min(20, maxSteps));
    $("steps").value = String(d.lcm_steps);
    $("guidance").value = String(d.lcm_guidance);
  } else {
    $("steps").max = String(maxSteps);
    $("steps").value = String(d.steps);
    $("guidance").value = String(d.guidance);
  }
  syncOutputs();
}

async function loadConfig() {
  try {
    const r = await fetch("/v1/config");
    if (!r.ok) throw new Error(await errorMessage(r));
    state.config = await r.json();
  } catch (e) {
    showError(`Cannot reach the server: ${e.message}`);
    return;
  }
  const c = state.config;
  $("num-images").max = String(c.limits.max_images);
  $("num-images").value = String(Math.min(c.defaults.num_images, c.limits.max_images));
  $("guidance").min = String(c.limits.min_guidance);
  $("guidance").max = String(c.limits.max_guidance);
  $("seed").max = String(c.limits.max_seed);
  applyLcmDefaults();
  if (!c.lcm_available) {
    $("lcm-hint").textContent =
      "Reduces sampling steps significantly, but may decrease quality. (This server was started without " +
      "--lcm-lora, so it will refuse LCM requests.)";
    $("lcm-hint").classList.add("warn");
  }
  if (c.controlnet_available) {
    const s = $("control-scale");
    s.min = String(c.limits.min_control_scale);
    s.max = String(Math.min(2, c.limits.max_control_scale));
    s.value = String(c.defaults.control_scale);
    $("pose-box").hidden = false;
    syncOutputs();
  }
  if (!c.face_analysis) {
    showError("This server was started without face models (--antelope DIR), so it cannot read photos.");
  }
  if (c.examples > 0) loadExamples();
}

async function loadExamples() {
  const r = await fetch("/v1/examples");
  if (!r.ok) return;
  const list = (await r.json()).examples || [];
  const box = $("examples");
  box.replaceChildren();
  for (const ex of list) {
    const b = el("button", {type: "button", title: ex.name, "aria-label": `Example ${ex.name}`},
                 el("img", {src: ex.url, alt: ex.name, loading: "lazy"}));
    b.addEventListener("click", () => runExample(ex));
    box.append(b);
  }
  $("examples-box").hidden = list.length === 0;
}

// Like the demo: an example replaces the photos and runs at once.
async function runExample(ex) {
  const r = await fetch(ex.url);
  if (!r.ok) { showError(await errorMessage(r)); return; }
  const blob = await r.blob();
  for (const p of [...state.photos]) removePhoto(p);
  await addPhotos([new File([blob], ex.name, {type: blob.type})]);
  if (state.photos.some((p) => p.status === "ok")) submit();
}

// ---- photos ------------------------------------------------------------------------------------------------

async function decodeForCanvas(blob) {
  // Rotated by the EXIF orientation, as the server's decoder does, so that the face boxes line up.
  return await createImageBitmap(blob, {imageOrientation: "from-image"});
}

function drawPhoto(p) {
  const canvas = p.card.querySelector("canvas");
  const img = p.bitmap;
  if (!img) return;
  const scale = Math.min(1, 480 / Math.max(img.width, img.height));
  canvas.width = Math.max(1, Math.round(img.width * scale));
  canvas.height = Math.max(1, Math.round(img.height * scale));
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0, canvas.width, canvas.height);
  const a = p.analysis;
  if (!a) return;
  const sx = canvas.width / a.width, sy = canvas.height / a.height;
  a.faces.forEach((f, i) => {
    const [x1, y1, x2, y2] = f.box;
    const chosen = i === a.chosen;
    g.lineWidth = chosen ? Math.max(2, canvas.width / 120) : 1;
    g.strokeStyle = chosen ? "#2fdc6b" : "rgba(255, 255, 255, 0.7)";
    g.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
  });
}

function setPhotoStatus(p, status, text) {
  p.status = status;
  p.card.classList.toggle("ok", status === "ok");
  p.card.classList.toggle("bad", status === "bad");
  p.card.querySelector(".status").textContent = text;
  updateSubmit();
}

async function analyzePhoto(p) {
  const form = new FormData();
  form.append("photo", p.blob, p.name);
  try {
    const r = await fetch("/v1/embed", {method: "POST", body: form});
    if (!state.photos.includes(p)) return;
    if (!r.ok) {
      p.analysis = null;
      setPhotoStatus(p, "bad", await errorMessage(r));
    } else {
      const j = await r.json();
      p.analysis = j.photos[0];
      const n = p.analysis.faces.length;
      setPhotoStatus(p, "ok", n === 1 ? "face found" : `${n} faces found, using the largest`);
    }
  } catch (e) {
    setPhotoStatus(p, "bad", `could not upload: ${e.message}`);
  }
  drawPhoto(p);
  updateIdentityNote();
}

// With several photos: how well each matches the combined identity (a low value suggests another person).
async function updateIdentityNote() {
  const ok = state.photos.filter((p) => p.status === "ok");
  const note = $("identity-note");
  if (ok.length < 2) { note.hidden = true; return; }
  const form = new FormData();
  for (const p of ok) form.append("photo", p.blob, p.name);
  const r = await fetch("/v1/embed", {method: "POST", body: form});
  if (!r.ok) return;
  const j = await r.json();
  ok.forEach((p, i) => {
    const info = j.photos[i];
    if (!info) return;
    p.card.querySelector(".status").textContent = info.used === false
      ? `left out: match ${fmt(info.similarity_to_identity, 2)} (another person?)`
      : `face found · match ${fmt(info.similarity_to_identity, 2)}`;
  });
  const used = j.photos.filter((x) => x.used !== false).length;
  note.textContent = `One identity from ${used} of ${ok.length} photos (mean of their ArcFace embeddings). ` +
                     "“match” is each photo's cosine similarity to it.";
  note.hidden = false;
}

async function addPhotos(files) {
  showError("");
  const max = (state.config && state.config.limits.max_photos) || 8;
  const jobs = [];
  for (const file of files) {
    if (!file.type.startsWith("image/")) { showError(`${file.name} is not an image`); continue; }
    if (state.photos.length >= max) { showError(`At most ${max} photos per identity.`); break; }
    const p = {id: state.nextPhotoId++, blob: file, name: file.name || "photo", status: "analyzing"};
    p.card = el("div", {class: "photo", "data-photo": String(p.id)},
                el("canvas", {"aria-label": `Photo ${p.name}`}),
                el("div", {class: "status", text: "looking for a face…"}),
                el("button", {class: "remove", type: "button", title: "Remove", "aria-label": "Remove photo",
                              onclick: () => removePhoto(p)}, "×"));
    $("photos").append(p.card);
    state.photos.push(p);
    updateSubmit();
    jobs.push((async () => {
      try { p.bitmap = await decodeForCanvas(file); } catch (_) { p.bitmap = null; }
      drawPhoto(p);
      await analyzePhoto(p);
    })());
  }
  await Promise.all(jobs);
}

function removePhoto(p) {
  state.photos = state.photos.filter((q) => q !== p);
  p.card.remove();
  if (p.bitmap && p.bitmap.close) p.bitmap.close();
  updateSubmit();
  updateIdentityNote();
}

function setupDropzone() {
  const dz = $("dropzone"), input = $("file-input");
  dz.addEventListener("click", () => input.click());
  dz.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => { addPhotos([...input.files]); input.value = ""; });
  for (const ev of ["dragenter", "dragover"]) {
    dz.addEventListener(ev, (e) => { e.preventDefault(); dz.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    dz.addEventListener(ev, (e) => { e.preventDefault(); dz.classList.remove("over"); });
  }
  dz.addEventListener("drop", (e) => addPhotos([...e.dataTransfer.files]));
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length) addPhotos(files);
  });
}

// ---- pose image (ControlNet) -------------------------------------------------------------------------------

function setPose(file) {
  clearPose();
  if (!file) return;
  if (!file.type.startsWith("image/")) { showError(`${file.name} is not an image`); return; }
  const max = (state.config && state.config.limits.max_body_bytes) || 16 << 20;
  if (file.size > max) { showError(`${file.name} is larger than this server accepts.`); return; }
  showError("");
  state.pose = {blob: file, name: file.name || "pose", url: URL.createObjectURL(file)};
  $("pose-img").src = state.pose.url;
  $("pose-preview").hidden = false;
  $("pose-name").textContent = state.pose.name;
  $("pose-choose").textContent = "Replace…";
  $("control-scale").disabled = false;
}

function clearPose() {
  if (state.pose) URL.revokeObjectURL(state.pose.url);
  state.pose = null;
  $("pose-img").removeAttribute("src");
  $("pose-preview").hidden = true;
  $("pose-name").textContent = "";
  $("pose-choose").textContent = "Choose pose image…";
  $("control-scale").disabled = true;
}

function setupPose() {
  const input = $("pose-input");
  $("pose-choose").addEventListener("click", () => input.click());
  input.addEventListener("change", () => { setPose(input.files[0]); input.value = ""; });
  $("pose-clear").addEventListener("click", clearPose);
  $("control-scale").addEventListener("input", syncOutputs);
}

// ---- generation ----------------------------------------------------------------------------------------------

function updateSubmit() {
  const ready = state.photos.some((p) => p.status === "ok") && !state.photos.some((p) => p.status === "analyzing");
  $("submit").disabled = !ready || state.job !== null;
}

function setProgress(job) {
  const box = $("progress-box");
  box.hidden = false;
  const pr = job.progress || {};
  $("progress").value = pr.fraction || 0;
  let text;
  if (job.state === "queued") text = `waiting in the queue (position ${job.queue_position || 1})`;
  else if (pr.stage === "denoise") text = `denoising: step ${pr.step} of ${pr.total}`;
  else if (pr.stage === "encode") text = "encoding the identity";
  else if (pr.stage === "decode") text = "decoding the images";
  else if (pr.stage === "similarity") text = "measuring ID similarity";
  else text = job.state;
  $("progress-text").textContent = `${text} · ${Math.round((pr.fraction || 0) * 100)}%`;
}

function renderGallery(job) {
  const g = $("gallery");
  g.replaceChildren();
  for (const im of job.images) {
    const name = `arc2face_seed${im.seed}.png`;
    const sim = im.id_similarity === null
      ? el("span", {class: "sim", title: im.note || "", text: `ID similarity: n/a (${im.note || "unknown"})`})
      : el("span", {class: "sim", title: "cosine similarity of this face's ArcFace embedding to the input identity",
                    text: `ID similarity ${fmt(im.id_similarity, 3)}`});
    const reuse = el("button", {type: "button", title: "Put this seed in the options (randomize off)",
                                onclick: () => { $("seed").value = String(im.seed); $("randomize").checked = false;
                                                 $("advanced").open = true; }}, "Use seed");
    g.append(el("figure", {},
                el("img", {src: im.url, alt: `Generated image, seed ${im.seed}`, width: String(im.width),
                           height: String(im.height)}),
                el("figcaption", {},
                   el("span", {class: "seed", text: `seed ${im.seed}`}), sim,
                   el("a", {href: im.url, download: name}, "Download"), reuse)));
  }
}

function finishJob(job) {
  stopFollowing();
  state.job = null;
  $("cancel").hidden = true;
  updateSubmit();
  if (job.state === "succeeded") {
    setProgress(job);
    $("progress-text").textContent = `done · ${job.images.length} image${job.images.length === 1 ? "" : "s"}`;
    renderGallery(job);
  } else if (job.state === "cancelled") {
    $("progress-box").hidden = true;
    showError("Generation cancelled.");
  } else {
    $("progress-box").hidden = true;
    showError(`Generation failed: ${job.error || "unknown error"}`);
  }
}

function stopFollowing() {
  if (state.events) { state.events.close(); state.events = null; }
  if (state.pollTimer) { clearTimeout(state.pollTimer); state.pollTimer = null; }
}

function onJobUpdate(job) {
  if (!state.job || job.id !== state.job.id) return;
  state.job = job;
  if (job.state === "succeeded" || job.state === "failed" || job.state === "cancelled") finishJob(job);
  else setProgress(job);
}

// Polling, when event streams are unavailable (the server limits how many are open).
async function poll() {
  if (!state.job) return;
  try {
    const r = await fetch(`/v1/jobs/${state.job.id}`);
    if (r.ok) onJobUpdate(await r.json());
  } catch (_) { /* try again */ }
  if (state.job) state.pollTimer = setTimeout(poll, 500);
}

function follow(job) {
  stopFollowing();
  const es = new EventSource(job.urls.events);
  state.events = es;
  const handle = (e) => onJobUpdate(JSON.parse(e.data));
  es.addEventListener("progress", handle);
  es.addEventListener("done", handle);
  es.onerror = () => {
    if (state.events !== es) return;
    es.close();
    state.events = null;
    poll();
  };
}

async function submit() {
  showError("");
  const photos = state.photos.filter((p) => p.status === "ok");
  if (!photos.length) { showError("Upload a photo with a face first."); return; }
  if ($("randomize").checked) {
    const max = (state.config && state.config.limits.max_seed) || 2147483647;
    $("seed").value = String(Math.floor(Math.random() * (max + 1)));
  }
  const seed = Number($("seed").value);
  if (!Number.isInteger(seed) || seed < 0) { showError("The seed must be a whole number ≥ 0."); return; }
  const form = new FormData();
  for (const p of photos) form.append("photo", p.blob, p.name);
  form.append("steps", $("steps").value);
  form.append("guidance", $("guidance").value);
  form.append("num_images", $("num-images").value);
  form.append("seed", String(seed));
  form.append("lcm", $("lcm").checked ? "true" : "false");
  if (state.pose) {
    form.append("pose_image", state.pose.blob, state.pose.name);
    form.append("control_scale", $("control-scale").value);
  }
  $("submit").disabled = true;
  state.job = {id: null};
  let r;
  try {
    r = await fetch("/v1/generate", {method: "POST", body: form});
  } catch (e) {
    state.job = null;
    updateSubmit();
    showError(`Could not reach the server: ${e.message}`);
    return;
  }
  if (!r.ok) {
    state.job = null;
    updateSubmit();
    showError(await errorMessage(r));
    return;
  }
  const job = await r.json();
  state.job = job;
  $("cancel").hidden = false;
  $("gallery").replaceChildren(el("p", {class: "empty", text: "Generating…"}));
  setProgress(job);
  follow(job);
}

async function cancel() {
  if (!state.job || !state.job.id) return;
  try {
    await fetch(`/v1/jobs/${state.job.id}`, {method: "DELETE"});
  } catch (e) {
    showError(`Could not cancel: ${e.message}`);
  }
}

// ---- start -------------------------------------------------------------------------------------------------

function init() {
  setupDropzone();
  setupPose();
  for (const id of ["steps", "guidance", "num-images"]) $(id).addEventListener("input", syncOutputs);
  $("lcm").addEventListener("change", applyLcmDefaults);
  $("submit").addEventListener("click", submit);
  $("cancel").addEventListener("click", cancel);
  syncOutputs();
  loadConfig();
}

document.addEventListener("DOMContentLoaded", init);
