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
  checkIn: { label: "Check in", method: "POST", path: (id) => `/appointments/${id}/check-in`, done: "checked in", admin: true },
  complete: { label: "Complete", method: "POST", path: (id) => `/appointments/${id}/complete`, done: "completed", admin: true },
  noShow: { label: "No-show", method: "POST", path: (id) => `/appointments/${id}/no-show`, done: "marked a no-show", admin: true },
  confirm: { label: "Confirm", method: "POST", path: (id) => `/appointments/${id}/confirm`, done: "confirmed" },
  reschedule: { label: "Reschedule", opens: "move" },
  cancel: { label: "Cancel", method: "DELETE", path: (id) => `/appointments/${id}`, done: "cancelled", opens: "cancel" },
  undo: { label: "Undo", method: "POST", path: (id) => `/appointments/${id}/undo`, done: "set back", admin: true },
};
// What a card offers follows its status (and, for "Undo", that its day is today), as the API's
// transitions do; the API stays the judge of timing (an early no-show is refused and explained).
function allowedActions(visit, isToday) {
  switch (visit.status) {
    case "BOOKED":
    case "RESCHEDULED":
      return [
        "checkIn",
        "noShow",
        ...(visit.confirmation_status === "confirmed" ? [] : ["confirm"]),
        "reschedule",
        "cancel",
      ];
    case "CHECKED_IN":
      return isToday ? ["complete", "undo"] : ["complete"];
    case "NO_SHOW":
      return isToday ? ["undo"] : [];
    default:
      return [];
  }
}
// What the key may do (GET /api/v1/me): a readonly key sees the day and no action at all, an
// agent key what the API lets an agent do.
function mayAct(name) {
  if (state.role === "admin") return true;
  if (state.role === "agent") return !ACTIONS[name].admin;
  return false;
}
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
const state = {
  day: null,
  today: null,
  loading: 0,
  shown: new Map(),
  booking: null,
  moving: null,
  cancelling: null,
  role: null,
  visitTypes: new Map(),
  doctorChoice: null,
};
// Below 600 px wide the board shows one doctor at a time, chosen with the "Doctor" select.
const NARROW = window.matchMedia("(max-width: 599.98px)");

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

function visitItem(visit, doctor, isToday) {
  const status = STATUSES[visit.status] || { label: visit.status, mark: "?" };
  const confirmed = visit.confirmation_status === "confirmed";
  const lineId = `visit-${visit.id}`;
  const line = el(
    "div",
    { className: "visit-line", id: lineId },
    el("span", { className: "time", text: `${visit.start_time}\u2013${visit.end_time}` }),
    el("span", { className: "badge" }, el("span", { "aria-hidden": "true", text: status.mark }), ` ${status.label}`),
    el("span", { className: "patient", text: visit.patient_name }),
    el("a", { className: "mobile", href: `tel:${visit.patient_mobile_number}`, text: visit.patient_mobile_number }),
    el("span", { className: confirmed ? "confirmation confirmed" : "confirmation", text: confirmed ? "Confirmed" : "Unconfirmed" }),
  );
  const actions = el("div", { className: "actions" });
  for (const name of allowedActions(visit, isToday).filter(mayAct)) {
    const action = ACTIONS[name];
    const button = el("button", {
      type: "button",
      className: `action ${name}`,
      "aria-describedby": lineId,
      "data-focus": `${visit.id}:${name}`,
      text: action.label,
    });
    button.addEventListener("click", () => {
      if (action.opens === "move") openMove(visit, doctor);
      else if (action.opens === "cancel") openCancel(visit, doctor);
      else act(button, action, visit);
    });
    actions.append(button);
  }
  const statusClass = visit.status.toLowerCase().replace("_", "-");
  return el("li", { className: `visit status-${statusClass}` }, line, actions);
}

function slotItem(doctor, date, slot) {
  if (state.role !== "admin" && state.role !== "agent") {
    // A key that may not book sees the free time, not a button that would be refused.
    return el("li", { className: "free" }, el("span", { className: "slot", text: `${slot.start_time} free` }));
  }
  const button = el("button", {
    type: "button",
    className: "slot",
    "data-focus": `slot:${doctor.doctor_id}:${slot.start_time}`,
    text: `Book ${slot.start_time}`,
  });
  button.addEventListener("click", () => openBooking(doctor, date, slot));
  return el("li", { className: "free" }, button);
}

// The column's line a receptionist reads at a glance: who is still to come, who is here, who
// has been seen, who did not come, and what is free.
function summaryOf(doctor) {
  const count = (...statuses) => doctor.appointments.filter((a) => statuses.includes(a.status)).length;
  const parts = [
    [count("BOOKED", "RESCHEDULED"), "to come"],
    [count("CHECKED_IN"), "here"],
    [count("COMPLETED"), "seen"],
    [count("NO_SHOW"), "no-show"],
  ]
    .filter(([n]) => n > 0)
    .map(([n, words]) => `${n} ${words}`);
  parts.push(
    doctor.free_slots.length
      ? `${doctor.free_slots.length} free`
      : DAY_REASONS[doctor.unavailable_reason] || "No free slots",
  );
  return parts.join(" \u00B7 ");
}

function column(doctor, date, isToday) {
  const headingId = `doctor-${doctor.doctor_id}`;
  const entries = [
    ...doctor.appointments.map((a) => [a.start_time, 0, visitItem(a, doctor, isToday)]),
    ...doctor.free_slots.map((s) => [s.start_time, 1, slotItem(doctor, date, s)]),
  ].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]));
  const list = el("ol", { className: "timeline" }, ...entries.map((entry) => entry[2]));
  if (!entries.length) list.append(el("li", { className: "empty", text: "Nothing this day" }));
  return [
    el("h2", { id: headingId, text: doctor.doctor_name }),
    el("p", { className: "summary", text: summaryOf(doctor) }),
    list,
  ];
}

function renderDoctorChoice(doctors) {
  const select = $("doctor-choice");
  const ids = doctors.map((d) => d.doctor_id);
  if (!ids.includes(state.doctorChoice)) state.doctorChoice = ids[0] || null;
  const wanted = JSON.stringify(doctors.map((d) => [d.doctor_id, d.doctor_name]));
  if (select.dataset.options !== wanted) {
    select.replaceChildren(...doctors.map((d) => el("option", { value: d.doctor_id, text: d.doctor_name })));
    select.dataset.options = wanted;
  }
  if (state.doctorChoice) select.value = state.doctorChoice;
}

function showChosenDoctor() {
  for (const section of $("board").querySelectorAll("section[data-doctor]")) {
    section.hidden = NARROW.matches && section.dataset.doctor !== state.doctorChoice;
  }
}

function render(data) {
  const board = $("board");
  board.style.setProperty("--columns", String(Math.max(data.doctors.length, 1)));
  const isToday = data.date === data.today;
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
    // (After an action every column is rebuilt: `refresh`.)
    const signature = JSON.stringify([data.date, data.today, state.role, doctor]);
    if (state.shown.get(id) === signature) continue;
    const focused = section.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    section.replaceChildren(...column(doctor, data.date, isToday));
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
  renderDoctorChoice(data.doctors);
  showChosenDoctor();
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
    state.data = data;
    render(data);
    $("updated").textContent = `Updated ${data.now}`;
  } catch (error) {
    if (ticket === state.loading) failed(error);
  } finally {
    if (ticket === state.loading) board.setAttribute("aria-busy", "false");
  }
}

// After an action, whatever its outcome, the board is redrawn from the service's answer: every
// button comes back enabled and the cards show the true state.
async function refresh() {
  state.shown.clear();
  await load();
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
  } finally {
    button.disabled = false;
  }
  await refresh();
}

function openCancel(visit, doctor) {
  state.cancelling = visit;
  $("cancel-what").textContent = `${visit.patient_name}, ${visit.start_time} with ${doctor.doctor_name}. The slot is freed.`;
  $("cancel-dialog").showModal();
  $("cancel-keep").focus();
}

async function confirmCancel() {
  const visit = state.cancelling;
  const yes = $("cancel-yes");
  yes.disabled = true;
  clearMessage();
  try {
    await api("DELETE", ACTIONS.cancel.path(visit.id));
    announce(`${visit.patient_name} at ${visit.start_time} cancelled.`);
  } catch (error) {
    failed(error);
  } finally {
    yes.disabled = false;
    $("cancel-dialog").close();
  }
  await refresh();
}

// ---- forms ----------------------------------------------------------------------------

// The API names body fields; the forms name them as their labels do.
const FIELD_LABELS = {
  "patient.name": "Patient name",
  "patient.mobile_number": "Mobile number",
  visit_type_id: "Visit type",
  date: "New date",
  start_time: "New time",
};

function formError(boxId, text, fields = []) {
  const box = $(boxId);
  box.replaceChildren(el("p", { text }));
  if (fields.length) {
    const line = (f) => `${FIELD_LABELS[f.field] || f.field}: ${f.message}`;
    box.append(el("ul", {}, ...fields.map((f) => el("li", { text: line(f) }))));
  }
  box.hidden = false;
}

// A 409 closes the form: the page explains and shows the day as it is now. Anything else the
// caller can fix stays in the form.
async function refused(error, dialogId, boxId) {
  if (error instanceof ApiError && error.status === 409) {
    $(dialogId).close();
    showMessage(error);
    await refresh();
    return true;
  }
  if (error instanceof ApiError && error.status !== 401) formError(boxId, error.message, error.body.errors || []);
  else if (!(error instanceof ApiError)) formError(boxId, "The service cannot be reached; try again.");
  return false;
}

async function loadVisitTypes() {
  try {
    const types = await api("GET", "/visit-types/?is_active=true&limit=500");
    state.visitTypes = new Map(types.map((t) => [t.id, t]));
  } catch (error) {
    // Without the list the form offers the standard visit only.
  }
}

async function openBooking(doctor, date, slot) {
  state.booking = { doctor, date, slot, key: idempotencyKey(), lookup: null };
  $("book-title").textContent = `Book ${slot.start_time} with ${doctor.doctor_name}`;
  $("book-slot").textContent = `${date}, ${slot.start_time}\u2013${slot.end_time}. Source: front desk.`;
  $("book-form").reset();
  $("book-error").hidden = true;
  showKnownPatient(null);
  const offered = doctor.visit_type_ids.filter((id) => state.visitTypes.has(id));
  if (doctor.visit_type_ids.length && offered.length < doctor.visit_type_ids.length) await loadVisitTypes();
  const types = doctor.visit_type_ids.map((id) => state.visitTypes.get(id)).filter(Boolean);
  const minutes = minutesBetween(slot.start_time, slot.end_time);
  $("visit-type").replaceChildren(
    el("option", { value: "", text: `Standard visit (${minutes} min)` }),
    ...types.map((t) => el("option", { value: t.id, text: `${t.name} (${t.duration_minutes} min)` })),
  );
  $("visit-type-field").hidden = !types.length;
  $("book-dialog").showModal();
  $("mobile-number").focus();
}

function minutesBetween(start, end) {
  const [h1, m1] = start.split(":").map(Number);
  const [h2, m2] = end.split(":").map(Number);
  return h2 * 60 + m2 - (h1 * 60 + m1);
}

function showKnownPatient(patient) {
  $("known-patient").textContent = patient ? `Existing patient: ${patient.name}` : "";
  $("name-field").hidden = Boolean(patient);
}

// Who the mobile number belongs to, asked once per number typed: the patient, or null.
function lookUpPatient() {
  const booking = state.booking;
  const mobile = $("mobile-number").value.trim();
  if (!booking) return Promise.resolve(null);
  if (booking.lookup && booking.lookup.mobile === mobile) return booking.lookup.found;
  const found = mobile
    ? api("GET", `/patients/mobile/${encodeURIComponent(mobile)}`).catch(() => null)
    : Promise.resolve(null);
  booking.lookup = { mobile, found };
  found.then((patient) => {
    if (state.booking === booking && booking.lookup.mobile === mobile) showKnownPatient(patient);
  });
  return found;
}

async function submitBooking(event) {
  event.preventDefault();
  const booking = state.booking;
  const mobile = $("mobile-number").value.trim();
  const submit = event.submitter || $("book-form").querySelector("button[type=submit]");
  if (!mobile) {
    formError("book-error", "Enter the patient's mobile number.");
    $("mobile-number").focus();
    return;
  }
  submit.disabled = true;
  try {
    const known = await lookUpPatient();
    const name = $("patient-name").value.trim();
    if (!known && !name) {
      formError("book-error", "Enter the patient's name: no patient has this mobile number yet.");
      $("patient-name").focus();
      return;
    }
    const body = {
      doctor_id: booking.doctor.doctor_id,
      date: booking.date,
      start_time: booking.slot.start_time,
      source: "ADMIN",
      // A known patient is booked as they are: their record is not changed.
      ...(known ? { patient_id: known.id } : { patient: { name, mobile_number: mobile } }),
    };
    if ($("visit-type").value) body.visit_type_id = $("visit-type").value;
    try {
      // A double click or a retry after a lost answer books once.
      await api("POST", "/appointments/", body, { "Idempotency-Key": booking.key });
    } catch (error) {
      if (!(await refused(error, "book-dialog", "book-error")) && state.booking) {
        state.booking.key = idempotencyKey(); // a corrected form is a new request
      }
      return;
    }
    $("book-dialog").close();
    announce(`Booked ${booking.slot.start_time} for ${known ? known.name : name} with ${booking.doctor.doctor_name}.`);
    await refresh();
  } finally {
    submit.disabled = false;
  }
}

function openMove(visit, doctor) {
  state.moving = { visit, doctor, ticket: 0 };
  $("move-title").textContent = `Reschedule ${visit.patient_name}`;
  $("move-slot").textContent = `Now ${state.day}, ${visit.start_time}\u2013${visit.end_time} with ${doctor.doctor_name}.`;
  $("move-error").hidden = true;
  const date = el("input", { id: "new-date", name: "new-date", type: "date", required: "" });
  date.value = state.day;
  date.addEventListener("change", loadTimes);
  $("move-fields").replaceChildren(
    el("label", { for: "new-date", text: "New date" }),
    date,
    el("label", { for: "new-time", text: "New time" }),
    el("select", { id: "new-time", name: "new-time", required: "" }),
  );
  $("move-dialog").showModal();
  $("new-date").focus();
  loadTimes();
}

// The doctor's free slots on the new date, of the visit's own length.
async function loadTimes() {
  const moving = state.moving;
  if (!moving) return;
  const ticket = ++moving.ticket;
  const select = $("new-time");
  const day = $("new-date").value;
  $("move-submit").disabled = true;
  select.replaceChildren(el("option", { value: "", text: "Looking for free times\u2026" }));
  if (!day) return;
  const type = moving.visit.visit_type_id ? `&visit_type_id=${moving.visit.visit_type_id}` : "";
  let slots = [];
  try {
    const answer = await api("GET", `/appointments/availability/${moving.doctor.doctor_id}?date=${day}${type}`);
    slots = answer.days.flatMap((d) => d.slots);
  } catch (error) {
    if (state.moving === moving && ticket === moving.ticket) formError("move-error", error.message);
  }
  if (state.moving !== moving || ticket !== moving.ticket) return;
  if (!slots.length) {
    select.replaceChildren(el("option", { value: "", text: "No free times this day" }));
    return;
  }
  select.replaceChildren(
    ...slots.map((s) => el("option", { value: s.start_time, text: `${s.start_time}\u2013${s.end_time}` })),
  );
  $("move-submit").disabled = false;
}

async function submitMove(event) {
  event.preventDefault();
  const moving = state.moving;
  const date = $("new-date").value;
  const start = $("new-time").value;
  if (!date || !start) {
    formError("move-error", "Choose a new date and a free time.");
    return;
  }
  const submit = $("move-submit");
  submit.disabled = true;
  try {
    await api("PUT", `/appointments/${moving.visit.id}/reschedule`, { date, start_time: start });
  } catch (error) {
    await refused(error, "move-dialog", "move-error");
    submit.disabled = false;
    return;
  }
  submit.disabled = false;
  $("move-dialog").close();
  announce(`${moving.visit.patient_name} moved to ${date} ${start}.`);
  await refresh();
}

// ---- signing in, dates, refresh -------------------------------------------------------

function showSignedIn(signedIn) {
  $("signin").hidden = signedIn;
  $("day-controls").hidden = !signedIn;
  if (!signedIn) {
    state.shown.clear();
    state.role = null;
    $("board").replaceChildren();
    $("updated").textContent = "";
    $("who").textContent = "";
  }
}

function signOut(reason) {
  sessionStorage.removeItem(KEY_ITEM);
  for (const id of ["book-dialog", "move-dialog", "cancel-dialog"]) {
    if ($(id).open) $(id).close();
  }
  showSignedIn(false);
  if (reason) showMessage(new Error(reason));
  $("api-key").focus();
}

// Who the key is decides which buttons the page offers; nothing is drawn before it is known.
async function begin() {
  try {
    const me = await api("GET", "/me");
    state.role = me.role;
    $("who").textContent = `${me.name} (${me.role})`;
  } catch (error) {
    failed(error);
    return;
  }
  if (!apiKey()) return;
  await Promise.all([loadVisitTypes(), refresh()]);
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

function tick() {
  if (!document.hidden && state.role) load();
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
    begin();
  });
  $("signout").addEventListener("click", () => signOut(null));
  $("day").addEventListener("change", () => goTo($("day").value));
  $("previous-day").addEventListener("click", () => shiftDay(-1));
  $("next-day").addEventListener("click", () => shiftDay(1));
  $("to-today").addEventListener("click", () => goTo(state.today));
  $("doctor-choice").addEventListener("change", () => {
    state.doctorChoice = $("doctor-choice").value;
    showChosenDoctor();
  });
  NARROW.addEventListener("change", showChosenDoctor);
  $("book-form").addEventListener("submit", submitBooking);
  $("book-close").addEventListener("click", () => $("book-dialog").close());
  $("book-dialog").addEventListener("close", () => {
    state.booking = null;
  });
  $("mobile-number").addEventListener("change", lookUpPatient);
  $("mobile-number").addEventListener("blur", lookUpPatient);
  $("move-form").addEventListener("submit", submitMove);
  $("move-close").addEventListener("click", () => $("move-dialog").close());
  $("move-dialog").addEventListener("close", () => {
    state.moving = null;
    $("move-fields").replaceChildren();
  });
  $("cancel-yes").addEventListener("click", confirmCancel);
  $("cancel-keep").addEventListener("click", () => $("cancel-dialog").close());
  $("cancel-dialog").addEventListener("close", () => {
    state.cancelling = null;
  });
  setInterval(tick, REFRESH_MS);
  document.addEventListener("visibilitychange", tick);
  showSignedIn(Boolean(apiKey()));
  if (apiKey()) begin();
  else $("api-key").focus();
}

start();
