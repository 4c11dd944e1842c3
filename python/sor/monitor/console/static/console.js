// sor operator console: polls /api/state every 500 ms, keeps the last 10 minutes of totals in
// the page, draws them on <canvas>, renders the tables and the event log, and posts operator
// actions (risk state, model re-enable) with the operator's name and reason.
"use strict";

(() => {
  const POLL_MS = 500;
  const WINDOW_MS = 10 * 60 * 1000;
  const REQUEST_TIMEOUT_MS = 3000;
  const STALE_MS = 2000;
  const RATE_WINDOW_MS = 5000;
  const OPERATOR_KEY = "sor-console-operator";
  const TOKEN_KEY = "sor-console-token";

  const $ = (id) => document.getElementById(id);

  // Everything the page knows, exposed for scripts and tests as window.sorConsole.
  const model = {
    history: [],        // {t (ms, server clock), filled, is, orders, rejects, ordersRate, rejectsRate}
    last: null,         // the last /api/state answer
    lastOkMs: null,     // client time of the last good answer
    polls: 0,
    failures: 0,
    lastError: null,
    pending: null,      // the action the dialog is confirming
    actions: [],        // answers of the actions posted from this page
  };
  window.sorConsole = model;

  // --- formatting ----------------------------------------------------------------------

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const money = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }
  function fmtInt(value) {
    return isNumber(value) ? integer.format(value) : "\u2014";
  }
  function fmtFixed(value, digits) {
    return isNumber(value) ? value.toFixed(digits) : "\u2014";
  }
  function fmtPercent(value) {
    return isNumber(value) ? (100 * value).toFixed(1) + "%" : "\u2014";
  }
  function fmtCompact(value) {
    if (!isNumber(value)) return "";
    const magnitude = Math.abs(value);
    if (magnitude >= 1e9) return (value / 1e9).toFixed(magnitude >= 1e10 ? 0 : 1) + "G";
    if (magnitude >= 1e6) return (value / 1e6).toFixed(magnitude >= 1e7 ? 0 : 1) + "M";
    if (magnitude >= 1e4) return (value / 1e3).toFixed(magnitude >= 1e5 ? 0 : 1) + "k";
    if (magnitude >= 100 || Number.isInteger(value)) return value.toFixed(0);
    return value.toFixed(magnitude >= 10 ? 1 : 2);
  }
  function fmtClock(tsNs) {
    if (!isNumber(tsNs)) return "";
    const date = new Date(tsNs / 1e6);
    const pad = (n, w) => String(n).padStart(w, "0");
    return `${pad(date.getHours(), 2)}:${pad(date.getMinutes(), 2)}:${pad(date.getSeconds(), 2)}` +
      `.${pad(date.getMilliseconds(), 3)}`;
  }
  function fmtDuration(seconds) {
    if (!isNumber(seconds)) return "";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}m ${String(s % 60).padStart(2, "0")}s`;
  }
  function setText(id, text) {
    const element = $(id);
    if (element.textContent !== text) element.textContent = text;
  }
  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }
  function upper(value) {
    return typeof value === "string" ? value.toUpperCase() : value == null ? null : String(value);
  }

  // --- polling -------------------------------------------------------------------------

  async function fetchJson(url, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    try {
      const response = await fetch(url, Object.assign({ cache: "no-store", signal: controller.signal }, options));
      let body = null;
      try {
        body = await response.json();
      } catch (ignored) {
        body = null;
      }
      return { response, body };
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    try {
      const { response, body } = await fetchJson("/api/state");
      if (!response.ok) {
        throw new Error(body && body.error ? body.error : `HTTP ${response.status}`);
      }
      model.polls += 1;
      model.lastOkMs = Date.now();
      model.lastError = null;
      apply(body);
    } catch (error) {
      model.failures += 1;
      model.lastError = error.name === "AbortError" ? "no answer within 3 s" : String(error.message || error);
    } finally {
      showConnection();
      setTimeout(poll, POLL_MS);
    }
  }

  function showConnection() {
    const element = $("connection");
    if (model.lastOkMs === null) {
      element.className = model.failures ? "connection connection-down" : "connection connection-wait";
      element.textContent = model.failures ? "DISCONNECTED" : "connecting\u2026";
      element.title = model.lastError || "";
      return;
    }
    const age = Date.now() - model.lastOkMs;
    if (age > STALE_MS || model.lastError) {
      element.className = "connection connection-down";
      element.textContent = `STALE ${Math.round(age / 1000)} s`;
      element.title = model.lastError || "";
      setText("last-update", model.lastError ? `last error: ${model.lastError}` : "");
    } else {
      element.className = "connection connection-live";
      element.textContent = "LIVE";
      element.title = "";
      const served = model.last && model.last.ts_ns;
      setText("last-update", served ? `updated ${fmtClock(served)}` : "");
    }
  }

  function record(snapshot) {
    const totals = snapshot.totals || {};
    const t = isNumber(snapshot.ts_ns) ? snapshot.ts_ns / 1e6 : Date.now();
    const point = {
      t,
      filled: isNumber(totals.filled_shares) ? totals.filled_shares : null,
      is: isNumber(totals.is_bps) ? totals.is_bps : null,
      orders: isNumber(totals.orders) ? totals.orders : null,
      rejects: isNumber(totals.risk_rejects) ? totals.risk_rejects : null,
      ordersRate: null,
      rejectsRate: null,
    };
    const previous = model.history.length ? model.history[model.history.length - 1] : null;
    if (previous && t <= previous.t) {
      return; // an answer older than the last one (out of order): keep the series monotonic
    }
    // rates over the trailing RATE_WINDOW_MS (from the oldest point inside it, else the last)
    let base = previous;
    for (let i = model.history.length - 1; i >= 0 && model.history[i].t >= t - RATE_WINDOW_MS; i -= 1) {
      base = model.history[i];
    }
    if (base) {
      const seconds = (t - base.t) / 1000;
      // a counter that went down is a restarted router: no rate until the window is past it
      if (point.orders !== null && base.orders !== null && point.orders >= base.orders) {
        point.ordersRate = (point.orders - base.orders) / seconds;
      }
      if (point.rejects !== null && base.rejects !== null && point.rejects >= base.rejects) {
        point.rejectsRate = (point.rejects - base.rejects) / seconds;
      }
    }
    model.history.push(point);
    while (model.history.length && model.history[0].t < t - WINDOW_MS) model.history.shift();
  }

  // --- rendering -----------------------------------------------------------------------

  function apply(snapshot) {
    model.last = snapshot;
    record(snapshot);
    renderHeader(snapshot);
    renderTotals(snapshot.totals || {}, snapshot.model || {});
    renderVenues(snapshot.venues || []);
    renderParents(snapshot.parents || []);
    renderEvents(snapshot.events || []);
    renderCharts();
    const console_ = snapshot.console || {};
    $("token-row").hidden = !console_.token_required;
  }

  function renderHeader(snapshot) {
    const router = snapshot.router || {};
    setText("router-name", router.name || "\u2014");
    document.title = `sor console \u2014 ${router.name || ""}`;
    const engineState = $("engine-state");
    engineState.textContent = router.engine_state || "\u2014";
    engineState.className = "pill " + (router.engine_state === "running" ? "ok" : "bad");
    setText("heartbeat", isNumber(router.heartbeat_age_ms) ? `${router.heartbeat_age_ms.toFixed(1)} ms` : "\u2014");
    setText("uptime", isNumber(router.uptime_s) ? `up ${fmtDuration(router.uptime_s)}` : "");

    const risk = snapshot.risk || {};
    const riskState = upper(risk.state) || "\u2014";
    const riskBadge = $("risk-state");
    riskBadge.textContent = riskState;
    riskBadge.className = "badge badge-" + ({ ACTIVE: "active", REDUCING: "reducing", HALTED: "halted" }[riskState] || "unknown");
    const parts = [];
    if (risk.operator) parts.push(`by ${risk.operator}`);
    if (risk.reason) parts.push(risk.reason);
    if (isNumber(risk.changed_ns)) parts.push(fmtClock(risk.changed_ns));
    setText("risk-detail", parts.join(" \u00b7 "));
    $("risk-detail").title = parts.join(" \u00b7 ");

    const routing = snapshot.model || {};
    const mode = upper(routing.mode) || "\u2014";
    const modeBadge = $("model-mode");
    modeBadge.textContent = mode === "NONE" ? "NO MODEL" : mode;
    modeBadge.className = "badge badge-" + ({ MODEL: "model", FALLBACK: "fallback", NONE: "none" }[mode] || "unknown");
    let detail = "";
    if (mode === "FALLBACK") {
      detail = `${routing.reason || "?"}${routing.detail ? ": " + routing.detail : ""}` +
        (routing.fallback_policy ? ` \u00b7 on ${routing.fallback_policy}` : "") +
        (isNumber(routing.since_ns) ? ` since ${fmtClock(routing.since_ns)}` : "");
    } else if (routing.policy) {
      detail = `policy ${routing.policy}` + (routing.fallback_policy ? ` \u00b7 fallback ${routing.fallback_policy}` : "");
    }
    if (routing.versions && Object.keys(routing.versions).length) {
      detail += (detail ? " \u00b7 " : "") + Object.keys(routing.versions).sort().map(
        (name) => `${name} v${routing.versions[name].version ?? "?"}`).join(", ");
    }
    setText("model-reason", detail);
    $("model-reason").title = detail;

    $("resume").disabled = riskState === "ACTIVE";
    $("reduce").disabled = riskState === "REDUCING";
    $("enable-model").disabled = mode !== "FALLBACK";
  }

  function renderTotals(totals, routing) {
    setText("kpi-filled", fmtInt(totals.filled_shares));
    setText("kpi-notional", isNumber(totals.notional_usd) ? money.format(totals.notional_usd) : "\u2014");
    setText("kpi-is", fmtFixed(totals.is_bps, 2));
    setText("kpi-orders", fmtInt(totals.orders));
    setText("kpi-fills", fmtInt(totals.fills));
    setText("kpi-risk-rejects", fmtInt(totals.risk_rejects));
    setText("kpi-trips", fmtInt(routing.trips));
  }

  function sessionClass(session) {
    if (session === null || session === undefined) return "na";
    const text = String(session).toLowerCase();
    return text === "up" || text.includes("logged_on") || text === "active" ? "up" : "down";
  }

  function renderVenues(venues) {
    const body = $("venues").tBodies[0];
    const rows = [];
    if (!venues.length) {
      const row = document.createElement("tr");
      row.className = "empty";
      const td = cell(row, "no venues");
      td.colSpan = 11;
      rows.push(row);
    }
    for (const venue of venues) {
      const row = document.createElement("tr");
      row.dataset.venue = venue.name;
      cell(row, venue.name);
      cell(row, venue.kind || "\u2014");
      cell(row, venue.session == null ? "n/a" : String(venue.session), sessionClass(venue.session));
      cell(row, venue.enabled ? "yes" : "no", venue.enabled ? "up" : "down");
      cell(row, fmtInt(venue.orders), "num");
      cell(row, fmtInt(venue.fills), "num");
      cell(row, fmtPercent(venue.fill_rate), "num");
      cell(row, fmtInt(venue.filled_shares), "num");
      cell(row, fmtInt(venue.rejects), "num");
      cell(row, fmtInt(venue.risk_rejects), "num");
      const share = cell(row, "");
      if (isNumber(venue.route_share)) {
        const bar = document.createElement("span");
        bar.className = "share";
        bar.style.width = `${Math.max(1, Math.round(venue.route_share * 80))}px`;
        share.appendChild(bar);
        share.appendChild(document.createTextNode(fmtPercent(venue.route_share)));
      } else {
        share.textContent = "\u2014";
      }
      rows.push(row);
    }
    body.replaceChildren(...rows);
  }

  function renderParents(parents) {
    const body = $("parents").tBodies[0];
    setText("parents-count", parents.length ? `(${parents.length})` : "");
    const rows = [];
    if (!parents.length) {
      const row = document.createElement("tr");
      row.className = "empty";
      const td = cell(row, "no parent orders");
      td.colSpan = 9;
      rows.push(row);
    }
    for (const parent of parents) {
      const row = document.createElement("tr");
      row.dataset.clOrdId = parent.cl_ord_id;
      cell(row, parent.cl_ord_id);
      cell(row, parent.symbol || "\u2014");
      const side = String(parent.side || "").toLowerCase();
      cell(row, side || "\u2014", side.startsWith("b") ? "buy" : side.startsWith("s") ? "sell" : "");
      cell(row, fmtInt(parent.quantity), "num");
      cell(row, fmtInt(parent.cum_quantity), "num");
      const progress = cell(row, "");
      if (isNumber(parent.quantity) && parent.quantity > 0 && isNumber(parent.cum_quantity)) {
        const outer = document.createElement("span");
        outer.className = "progress";
        const inner = document.createElement("span");
        inner.style.width = `${Math.min(100, (100 * parent.cum_quantity) / parent.quantity)}%`;
        outer.appendChild(inner);
        progress.appendChild(outer);
      }
      cell(row, fmtFixed(parent.avg_px, 4), "num");
      cell(row, parent.ord_status == null ? "\u2014" : String(parent.ord_status));
      cell(row, fmtFixed(parent.is_bps, 2), "num");
      rows.push(row);
    }
    body.replaceChildren(...rows);
  }

  const SEVERITIES = { info: "info", notice: "info", warning: "warning", warn: "warning",
                       error: "critical", critical: "critical", alert: "critical" };

  let eventsKey = null;
  function renderEvents(given) {
    // newest first, whatever order the control object keeps them in
    const events = given.slice().sort((a, b) => (b.ts_ns || 0) - (a.ts_ns || 0));
    const first = events[0];
    const key = `${events.length}|${first ? first.ts_ns + first.text : ""}`;
    if (key === eventsKey) return;
    eventsKey = key;
    const items = [];
    if (!events.length) {
      const item = document.createElement("li");
      item.className = "empty";
      item.textContent = "no events yet";
      items.push(item);
    }
    for (const event of events) {
      const item = document.createElement("li");
      const severity = SEVERITIES[String(event.severity || "").toLowerCase()] || "info";
      item.className = `severity-${severity}`;
      item.dataset.kind = event.kind || "";
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = fmtClock(event.ts_ns);
      const sev = document.createElement("span");
      sev.className = "sev";
      sev.textContent = severity;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = event.text || event.kind || "";
      item.append(time, sev, text);
      items.push(item);
    }
    $("events").replaceChildren(...items);
  }

  // --- charts --------------------------------------------------------------------------

  const COLORS = { green: "#2fbf71", blue: "#4c9aff", red: "#e5484d", violet: "#b48cff",
                   grid: "#243041", axis: "#8a96a8", zero: "#4a5568" };

  function niceStep(range, count) {
    const raw = range / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const fraction = raw / power;
    const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
    return nice * power;
  }

  function drawChart(canvas, series, options) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const pad = { left: 52, right: 10, top: 8, bottom: 20 };
    const plotWidth = width - pad.left - pad.right;
    const plotHeight = height - pad.top - pad.bottom;
    const history = model.history;
    const end = history.length ? history[history.length - 1].t : Date.now();
    const start = end - WINDOW_MS;
    const x = (t) => pad.left + ((t - start) / WINDOW_MS) * plotWidth;

    let low = Infinity;
    let high = -Infinity;
    let points = 0;
    for (const s of series) {
      for (const p of history) {
        const value = p[s.key];
        if (value === null || value === undefined) continue;
        low = Math.min(low, value);
        high = Math.max(high, value);
        points += 1;
      }
    }
    canvas.dataset.points = String(points);
    context.font = "11px ui-monospace, 'DejaVu Sans Mono', monospace";
    context.textBaseline = "middle";

    // time axis: a line every minute, labels every two
    context.strokeStyle = COLORS.grid;
    context.lineWidth = 1;
    context.fillStyle = COLORS.axis;
    context.textAlign = "center";
    for (let minutes = 10; minutes >= 0; minutes -= 1) {
      const px = Math.round(x(end - minutes * 60000)) + 0.5;
      context.beginPath();
      context.moveTo(px, pad.top);
      context.lineTo(px, pad.top + plotHeight);
      context.stroke();
      if (minutes % 2 === 0) {
        context.fillText(minutes === 0 ? "now" : `-${minutes}m`, Math.min(px, width - 14), height - 8);
      }
    }
    if (!points) {
      context.fillStyle = COLORS.axis;
      context.textAlign = "center";
      context.fillText(options.empty || "no data", pad.left + plotWidth / 2, pad.top + plotHeight / 2);
      return;
    }
    if (options.zero) {
      low = Math.min(low, 0);
      high = Math.max(high, 0);
    }
    if (high - low < 1e-9) {
      high += 1;
      if (!options.zero || low < 0) low -= 1;
    }
    const step = niceStep(high - low, 4);
    low = Math.floor(low / step) * step;
    high = Math.ceil(high / step) * step;
    const y = (value) => pad.top + plotHeight - ((value - low) / (high - low)) * plotHeight;

    context.textAlign = "right";
    for (let value = low; value <= high + step / 2; value += step) {
      const py = Math.round(y(value)) + 0.5;
      context.strokeStyle = Math.abs(value) < step / 2 ? COLORS.zero : COLORS.grid;
      context.beginPath();
      context.moveTo(pad.left, py);
      context.lineTo(pad.left + plotWidth, py);
      context.stroke();
      context.fillStyle = COLORS.axis;
      context.fillText(fmtCompact(Math.abs(value) < step / 2 ? 0 : value), pad.left - 6, py);
    }

    context.save();
    context.beginPath();
    context.rect(pad.left, pad.top, plotWidth, plotHeight);
    context.clip();
    for (const s of series) {
      const color = COLORS[s.color];
      // a gap in the data (no value) breaks the line
      let segment = [];
      const segments = [];
      for (const p of history) {
        const value = p[s.key];
        if (value === null || value === undefined) {
          if (segment.length) segments.push(segment);
          segment = [];
        } else {
          segment.push([x(p.t), y(value)]);
        }
      }
      if (segment.length) segments.push(segment);
      for (const line of segments) {
        if (s.fill && line.length > 1) {
          context.beginPath();
          context.moveTo(line[0][0], y(Math.max(low, 0)));
          for (const [px, py] of line) context.lineTo(px, py);
          context.lineTo(line[line.length - 1][0], y(Math.max(low, 0)));
          context.closePath();
          context.fillStyle = color + "33";
          context.fill();
        }
        context.beginPath();
        context.strokeStyle = color;
        context.lineWidth = 1.8;
        line.forEach(([px, py], i) => (i ? context.lineTo(px, py) : context.moveTo(px, py)));
        if (line.length === 1) context.arc(line[0][0], line[0][1], 1.5, 0, 2 * Math.PI);
        context.stroke();
      }
    }
    context.restore();
  }

  function lastValue(key) {
    for (let i = model.history.length - 1; i >= 0; i -= 1) {
      const value = model.history[i][key];
      if (value !== null && value !== undefined) return value;
    }
    return null;
  }

  function renderCharts() {
    drawChart($("chart-filled"), [{ key: "filled", color: "green", fill: true }], { zero: true, empty: "no fills reported" });
    drawChart($("chart-is"), [{ key: "is", color: "violet" }], { zero: true, empty: "no shortfall reported (no arrival prices)" });
    drawChart($("chart-rates"), [{ key: "ordersRate", color: "blue" }, { key: "rejectsRate", color: "red" }], { zero: true });
    const filled = lastValue("filled");
    const shortfall = lastValue("is");
    const orders = lastValue("ordersRate");
    const rejects = lastValue("rejectsRate");
    setText("chart-filled-now", filled === null ? "" : fmtInt(filled));
    setText("chart-is-now", shortfall === null ? "" : `${shortfall.toFixed(2)} bps`);
    setText("chart-rates-now", orders === null ? "" : `${orders.toFixed(1)} / ${rejects === null ? "\u2014" : rejects.toFixed(1)}`);
  }

  // --- actions -------------------------------------------------------------------------

  const ACTIONS = {
    HALTED: { title: "Engage the kill switch", halt: true,
              text: "Routing stops: every open child order on every venue is cancelled and no new one is sent until an operator resumes. Parents stay, paused.",
              url: "/api/risk-state", confirm: "HALT ROUTING" },
    REDUCING: { title: "Reduce only", halt: false,
                text: "Only orders that reduce a position are accepted; everything else is refused (REDUCING).",
                url: "/api/risk-state", confirm: "Set REDUCING" },
    ACTIVE: { title: "Resume routing", halt: false,
              text: "Back to ACTIVE: paused parents resume and their policies decide again.",
              url: "/api/risk-state", confirm: "Resume" },
    MODEL: { title: "Re-enable the model", halt: false,
             text: "Clears the model guard: parents leave the fallback policy and route on the models again.",
             url: "/api/model/enable", confirm: "Re-enable model" },
  };

  function openDialog(kind) {
    const action = ACTIONS[kind];
    model.pending = kind;
    $("action-form").className = "dialog" + (action.halt ? " halt" : "");
    $("action-title").textContent = action.title;
    $("action-text").textContent = action.text;
    $("confirm").textContent = action.confirm;
    $("confirm").disabled = false;
    $("form-error").hidden = true;
    $("form-error").textContent = "";
    $("reason").value = "";
    $("operator").value = localStorage.getItem(OPERATOR_KEY) || "";
    $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
    $("action-dialog").hidden = false;
    ($("operator").value ? $("reason") : $("operator")).focus();
  }

  function closeDialog() {
    $("action-dialog").hidden = true;
    model.pending = null;
  }

  function showNotice(text, ok) {
    const notice = $("notice");
    notice.textContent = text;
    notice.className = "notice " + (ok ? "ok" : "error");
    notice.hidden = false;
  }

  async function submitAction(event) {
    event.preventDefault();
    const kind = model.pending;
    if (!kind) return;
    const action = ACTIONS[kind];
    const operator = $("operator").value;
    const payload = { operator, reason: $("reason").value };
    if (action.url === "/api/risk-state") payload.state = kind;
    const headers = { "Content-Type": "application/json" };
    const token = $("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    $("confirm").disabled = true;
    try {
      const { response, body } = await fetchJson(action.url, { method: "POST", headers, body: JSON.stringify(payload) });
      model.actions.push({ kind, status: response.status, body });
      if (!response.ok) {
        const message = body && body.error ? body.error : `HTTP ${response.status}`;
        $("form-error").textContent = `${response.status}: ${message}`;
        $("form-error").hidden = false;
        return;
      }
      if (operator.trim()) localStorage.setItem(OPERATOR_KEY, operator.trim());
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      closeDialog();
      const what = kind === "MODEL" ? "model re-enabled" : `risk state ${kind}`;
      showNotice(`${what} by ${body.operator}: ${body.reason}`, true);
    } catch (error) {
      $("form-error").textContent = `the console server did not answer: ${error.name === "AbortError" ? "no answer within 3 s" : error.message}`;
      $("form-error").hidden = false;
    } finally {
      $("confirm").disabled = false;
    }
  }

  function start() {
    for (const id of ["kill-switch", "reduce", "resume", "enable-model"]) {
      const button = $(id);
      button.addEventListener("click", () => openDialog(button.dataset.action));
    }
    $("cancel").addEventListener("click", closeDialog);
    $("action-form").addEventListener("submit", submitAction);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("action-dialog").hidden) closeDialog();
    });
    window.addEventListener("resize", renderCharts);
    setInterval(showConnection, 1000);
    renderCharts();
    poll();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
