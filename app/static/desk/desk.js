// The front desk page: one day, a column per active doctor, driven by the service's JSON API
// (GET /api/v1/desk/day, and the same appointment endpoints every client uses).
// The key lives in this tab's sessionStorage only: never localStorage, never a cookie.
"use strict";

const KEY_ITEM = "clinic-desk-api-key";
const API = "/api/v1";
// Changes made elsewhere (the phone agent, another desk) must show within 30 s.
const REFRESH_MS = 10000;

const STATUSES = {
  BOOKED: { label: "Booked", mark: "\u25CB" },
  RESCHEDULED: { label: "Rescheduled", mark: "\u21BB" },
  CHECKED_IN: { label: "Checked in", mark: "\u25CF" },
  COMPLETED: { label: "Completed", mark: "\u2713" },
  NO_SHOW: { label: "No-show", mark: "\u2715" },
  CANCELLED: { label: "Cancelled", mark: "\u2013" },
};
const ACTIONS = {
  checkIn: { label: "Check in", method: "POST", path: (id) => `/appointments/${id}/check-in`, done: "checked in" },
  complete: { label: "Complete", method: "POST", path: (id) => `/appointments/${id}/complete`, done: "completed" },
  noShow: { label: "No-show", method: "POST", path: (id) => `/appointments/${id}/no-show`, done: "marked a no-show" },
  cancel: { label: "Cancel", method: "DELETE", path: (id) => `/appointments/${id}`, done: "cancelled" },
};
// What each status still allows, as the API's transitions do.
const ALLOWED = {
  BOOKED: ["checkIn", "noShow", "cancel"],
  RESCHEDULED: ["checkIn", "noShow", "cancel"],
  CHECKED_IN: ["complete"],
};
const DAY_REASONS = {
  past: "This day has passed",
  doctor_inactive: "Not taking appointments",
  beyond_horizon: "Beyond the booking horizon",
  holiday: "Clinic holiday",
  non_working_day: "Not working this day",
  leave: "On leave",
  daily_limit: "Fully booked",
};

const $ = (id) => document.getElementById(id);
const state = { day: null, loading: 0, shown: new Map(), booking: null };

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `The service answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { "X-API-Key": apiKey() || "", ...headers }, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    signOut("The API key was not accepted. Sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// crypto.randomUUID exists only on secure origins; a desk on the clinic's LAN may be plain http.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

// ---- messages -------------------------------------------------------------------------

function announce(text) {
  $("status").textContent = text;
}

function showMessage(error) {
  const box = $("message");
  box.replaceChildren(el("p", { text: error.message }));
  const fields = error.body && error.body.errors;
  if (fields && fields.length) {
    box.append(el("ul", {}, ...fields.map((f) => el("li", { text: f.message }))));
  }
  const alternatives = error.body && error.body.alternatives;
  if (alternatives && alternatives.length) {
    box.append(
      el("p", { text: "Nearest free slots:" }),
      el("ul", {}, ...alternatives.map((a) => el("li", { text: `${a.date} ${a.start_time}\u2013${a.end_time}` }))),
    );
  }
  const dismiss = el("button", { type: "button", className: "quiet", text: "Dismiss" });
  dismiss.addEventListener("click", clearMessage);
  box.append(dismiss);
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").replaceChildren();
}

function failed(error) {
  if (error instanceof ApiError) {
    if (error.status !== 401) showMessage(error);
  } else {
    showMessage(new Error("The service cannot be reached; the page keeps trying."));
  }
}

// ---- the board ------------------------------------------------------------------------

function visitItem(visit) {
  const status = STATUSES[visit.status] || { label: visit.status, mark: "?" };
  const lineId = `visit-${visit.id}`;
  const line = el(
    "div",
    { className: "visit-line", id: lineId },
    el("span", { className: "time", text: `${visit.start_time}\u2013${visit.end_time}` }),
    el("span", { className: "patient", text: visit.patient_name }),
    el("span", { className: "badge" }, el("span", { "aria-hidden": "true", text: status.mark }), ` ${status.label}`),
  );
  const actions = el("div", { className: "actions" });
  for (const name of ALLOWED[visit.status] || []) {
    const action = ACTIONS[name];
    const button = el("button", {
      type: "button",
      className: `action ${name}`,
      "aria-describedby": lineId,
      "data-focus": `${visit.id}:${name}`,
      text: action.label,
    });
    button.addEventListener("click", () => act(button, action, visit));
    actions.append(button);
  }
  const statusClass = visit.status.toLowerCase().replace("_", "-");
  return el("li", { className: `visit status-${statusClass}` }, line, actions);
}

function slotItem(doctor, date, slot) {
  const button = el("button", {
    type: "button",
    className: "slot",
    "data-focus": `slot:${doctor.doctor_id}:${slot.start_time}`,
    text: `Book ${slot.start_time}`,
  });
  button.addEventListener("click", () => openBooking(doctor, date, slot));
  return el("li", { className: "free" }, button);
}

function column(doctor, date) {
  const headingId = `doctor-${doctor.doctor_id}`;
  const active = doctor.appointments.filter((a) => a.status !== "CANCELLED").length;
  const summary = doctor.free_slots.length
    ? `${active} booked \u00B7 ${doctor.free_slots.length} free`
    : `${active} booked \u00B7 ${DAY_REASONS[doctor.unavailable_reason] || "No free slots"}`;
  const entries = [
    ...doctor.appointments.map((a) => [a.start_time, 0, visitItem(a)]),
    ...doctor.free_slots.map((s) => [s.start_time, 1, slotItem(doctor, date, s)]),
  ].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]));
  const list = el("ol", { className: "timeline" }, ...entries.map((entry) => entry[2]));
  if (!entries.length) list.append(el("li", { className: "empty", text: "Nothing this day" }));
  return [el("h2", { id: headingId, text: doctor.doctor_name }), el("p", { className: "summary", text: summary }), list];
}

function render(data) {
  const board = $("board");
  board.style.setProperty("--columns", String(Math.max(data.doctors.length, 1)));
  const seen = new Set();
  let previous = null;
  for (const doctor of data.doctors) {
    const id = doctor.doctor_id;
    seen.add(id);
    let section = board.querySelector(`section[data-doctor="${id}"]`);
    if (!section) {
      section = el("section", { className: "column", "data-doctor": id, "aria-labelledby": `doctor-${id}` });
      state.shown.delete(id);
    }
    // Keep each column's place; move it only when the order of doctors changed.
    const wanted = previous ? previous.nextElementSibling : board.firstElementChild;
    if (wanted !== section) board.insertBefore(section, wanted);
    previous = section;
    // Rebuild a column only when what it shows changed: no flicker, and focus stays put.
    const signature = JSON.stringify([data.date, doctor]);
    if (state.shown.get(id) === signature) continue;
    const focused = section.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    section.replaceChildren(...column(doctor, data.date));
    state.shown.set(id, signature);
    if (focused) {
      const again = section.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
      (again || section.querySelector("h2")).focus?.();
    }
  }
  for (const section of [...board.querySelectorAll("section[data-doctor]")]) {
    if (!seen.has(section.dataset.doctor)) {
      state.shown.delete(section.dataset.doctor);
      section.remove();
    }
  }
  const empty = board.querySelector(".no-doctors");
  if (!data.doctors.length && !empty) board.append(el("p", { className: "no-doctors", text: "No active doctors." }));
  if (data.doctors.length && empty) empty.remove();
}

async function load() {
  if (!apiKey()) return;
  const ticket = ++state.loading;
  const board = $("board");
  board.setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", `/desk/day${state.day ? `?date=${state.day}` : ""}`);
    if (ticket !== state.loading) return; // a newer load (another date) is under way
    if (!state.day) {
      state.day = data.date;
      $("day").value = data.date;
    }
    state.today = data.today;
    render(data);
    $("updated").textContent = `Updated ${data.now}`;
  } catch (error) {
    if (ticket === state.loading) failed(error);
  } finally {
    if (ticket === state.loading) board.setAttribute("aria-busy", "false");
  }
}

// ---- actions --------------------------------------------------------------------------

async function act(button, action, visit) {
  button.disabled = true;
  clearMessage();
  try {
    await api(action.method, action.path(visit.id));
    announce(`${visit.patient_name} at ${visit.start_time} ${action.done}.`);
  } catch (error) {
    failed(error);
  }
  await load();
}

function setBoardHidden(hidden) {
  // The modal dialog makes the page inert; say so to assistive technology as well.
  for (const id of ["bar", "board", "message"]) {
    if (hidden) $(id).setAttribute("aria-hidden", "true");
    else $(id).removeAttribute("aria-hidden");
  }
}

function openBooking(doctor, date, slot) {
  state.booking = { doctor, date, slot, key: idempotencyKey() };
  $("book-title").textContent = `Book ${slot.start_time} with ${doctor.doctor_name}`;
  $("book-slot").textContent = `${date}, ${slot.start_time}\u2013${slot.end_time}. Source: front desk.`;
  $("book-form").reset();
  $("book-error").hidden = true;
  setBoardHidden(true);
  $("book-dialog").showModal();
  $("patient-name").focus();
}

// The API names body fields; the form names them as its labels do.
const FIELD_LABELS = { "patient.name": "Patient name", "patient.mobile_number": "Mobile number" };

function dialogError(text, fields = []) {
  const box = $("book-error");
  box.replaceChildren(el("p", { text }));
  if (fields.length) {
    const line = (f) => `${FIELD_LABELS[f.field] || f.field}: ${f.message}`;
    box.append(el("ul", {}, ...fields.map((f) => el("li", { text: line(f) }))));
  }
  box.hidden = false;
}

async function submitBooking(event) {
  event.preventDefault();
  const booking = state.booking;
  const name = $("patient-name").value.trim();
  const mobile = $("mobile-number").value.trim();
  if (!name || !mobile) {
    dialogError("Enter the patient's name and mobile number.");
    (name ? $("mobile-number") : $("patient-name")).focus();
    return;
  }
  const submit = event.submitter || $("book-form").querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    await api(
      "POST",
      "/appointments/",
      {
        doctor_id: booking.doctor.doctor_id,
        date: booking.date,
        start_time: booking.slot.start_time,
        source: "ADMIN",
        patient: { name, mobile_number: mobile },
      },
      // A double click or a retry after a lost answer books once.
      { "Idempotency-Key": booking.key },
    );
    $("book-dialog").close();
    announce(`Booked ${booking.slot.start_time} for ${name} with ${booking.doctor.doctor_name}.`);
    await load();
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      // The slot is gone: the dialog closes, the page explains and shows the day as it is now.
      $("book-dialog").close();
      showMessage(error);
      await load();
    } else if (error instanceof ApiError && error.status !== 401) {
      dialogError(error.message, error.body.errors || []);
      state.booking.key = idempotencyKey(); // a corrected form is a new request
    } else if (!(error instanceof ApiError)) {
      dialogError("The service cannot be reached; try again.");
    }
  } finally {
    submit.disabled = false;
  }
}

// ---- signing in, dates, refresh -------------------------------------------------------

function showSignedIn(signedIn) {
  $("signin").hidden = signedIn;
  $("day-controls").hidden = !signedIn;
  if (!signedIn) {
    state.shown.clear();
    $("board").replaceChildren();
    $("updated").textContent = "";
  }
}

function signOut(reason) {
  sessionStorage.removeItem(KEY_ITEM);
  if ($("book-dialog").open) $("book-dialog").close();
  showSignedIn(false);
  if (reason) showMessage(new Error(reason));
  $("api-key").focus();
}

function shiftDay(days) {
  const date = new Date(`${$("day").value || state.day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  goTo(date.toISOString().slice(0, 10));
}

function goTo(day) {
  if (!day || day === state.day) return;
  state.day = day;
  $("day").value = day;
  clearMessage();
  load();
}

function start() {
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_ITEM, key);
    $("api-key").value = "";
    clearMessage();
    showSignedIn(true);
    load();
  });
  $("signout").addEventListener("click", () => signOut(null));
  $("day").addEventListener("change", () => goTo($("day").value));
  $("previous-day").addEventListener("click", () => shiftDay(-1));
  $("next-day").addEventListener("click", () => shiftDay(1));
  $("to-today").addEventListener("click", () => goTo(state.today));
  $("book-form").addEventListener("submit", submitBooking);
  $("book-close").addEventListener("click", () => $("book-dialog").close());
  $("book-dialog").addEventListener("close", () => {
    setBoardHidden(false);
    state.booking = null;
  });
  setInterval(() => {
    if (!document.hidden) load();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load();
  });
  showSignedIn(Boolean(apiKey()));
  if (apiKey()) load();
  else $("api-key").focus();
}

start();
