// The Antar console (docs/console.md): a live map of Jakarta for operators, and a customer and a
// driver view, on the public API through the edge. No build step, no framework, nothing from the
// internet: leaflet comes from npm (served as /console/leaflet.js), the map is a hand-drawn outline
// and a grid, without tiles.
//
// Sign-in: the authorization-code flow with PKCE (S256) as a public browser client, one client per
// view (console-ops, console-user, console-driver). Tokens live in sessionStorage (this tab only).
// The push channel (GET /events) is read with fetch(), so the bearer token goes in the
// Authorization header, never in a URL (EventSource cannot send headers).
'use strict';

(() => {
  const CLIENTS = {
    city: { client_id: 'console-ops', scope: 'ops', what: 'an operator (a customer account listed in ANTAR_OPERATORS)' },
    customer: { client_id: 'console-user', scope: 'user', what: 'a customer' },
    driver: { client_id: 'console-driver', scope: 'driver', what: 'a driver' },
  };
  const REDIRECT = location.origin + '/console/';
  const $ = (id) => document.getElementById(id);
  const views = ['city', 'customer', 'driver'];
  let view = 'city';

  // ---- small helpers ----------------------------------------------------------------------------

  const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const rnd = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
  const rupiah = (n) => 'Rp ' + Number(n).toLocaleString('id-ID');
  const ll = (lat, lng) => `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
  const say = (text) => { $('message').textContent = text || ''; };
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const k of kids) e.append(k);
    return e;
  }
  function pushEvent(listId, text, onClick) {
    const li = el('li', { textContent: `${new Date().toLocaleTimeString()} ${text}` });
    if (onClick) { li.classList.add('clickable'); li.addEventListener('click', onClick); }
    const ul = $(listId);
    ul.prepend(li);
    while (ul.children.length > 40) ul.lastChild.remove();
  }

  // ---- tokens and sign-in -----------------------------------------------------------------------

  function token(role) {
    const t = JSON.parse(sessionStorage.getItem('tok:' + role) || 'null');
    return t && t.exp > Date.now() + 5000 ? t : null;
  }
  function saveToken(role, doc) {
    sessionStorage.setItem('tok:' + role, JSON.stringify({
      access: doc.access_token, refresh: doc.refresh_token || null, exp: Date.now() + doc.expires_in * 1000,
    }));
  }

  async function signIn(role) {
    const c = CLIENTS[role];
    const verifier = rnd(48);
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    const state = rnd(18);
    sessionStorage.setItem('pkce:' + state, JSON.stringify({ verifier, role }));
    const q = new URLSearchParams({
      response_type: 'code', client_id: c.client_id, redirect_uri: REDIRECT, scope: c.scope,
      code_challenge: b64url(new Uint8Array(digest)), code_challenge_method: 'S256', state,
    });
    location.assign('/oauth/authorize?' + q);
  }

  async function tokenRequest(params) {
    const r = await fetch('/oauth/token', {
      method: 'POST', body: new URLSearchParams(params), cache: 'no-store',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    const doc = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(doc.error_description || doc.error || `token endpoint: ${r.status}`);
    return doc;
  }

  // Back from the authorization server with ?code=&state=&iss=: check state and issuer (RFC 9207),
  // redeem the code with the verifier, and take the code out of the address bar and history.
  async function finishSignIn() {
    const q = new URLSearchParams(location.search);
    if (!q.has('state')) return;
    const state = q.get('state');
    const saved = JSON.parse(sessionStorage.getItem('pkce:' + state) || 'null');
    sessionStorage.removeItem('pkce:' + state);
    history.replaceState(null, '', '/console/' + (saved ? '#' + saved.role : location.hash));
    if (!saved) { say('Sign-in answer with an unknown state: ignored.'); return; }
    if (q.get('error')) { say('Sign-in failed: ' + q.get('error')); return; }
    const meta = await (await fetch('/.well-known/oauth-authorization-server')).json();
    if (q.get('iss') !== meta.issuer) { say('Sign-in answer from an unexpected issuer: ignored.'); return; }
    const doc = await tokenRequest({
      grant_type: 'authorization_code', code: q.get('code'), redirect_uri: REDIRECT,
      client_id: CLIENTS[saved.role].client_id, code_verifier: saved.verifier,
    });
    saveToken(saved.role, doc);
    location.hash = '#' + saved.role;
  }

  async function bearer(role) {
    let t = token(role);
    if (t) return t.access;
    const old = JSON.parse(sessionStorage.getItem('tok:' + role) || 'null');
    if (old && old.refresh) {
      try {
        saveToken(role, await tokenRequest({ grant_type: 'refresh_token', refresh_token: old.refresh, client_id: CLIENTS[role].client_id }));
        return token(role).access;
      } catch (e) { /* fall through: sign in again */ }
    }
    sessionStorage.removeItem('tok:' + role);
    return null;
  }

  // ---- the API ----------------------------------------------------------------------------------

  const csrf = {};
  class ApiError extends Error {
    constructor(status, err) { super(err && err.message ? err.message : `HTTP ${status}`); this.status = status; this.err = err; }
  }
  async function api(role, method, path, body, headers) {
    const tok = await bearer(role);
    if (!tok) { showSignIn(); throw new ApiError(401, { message: 'sign in first' }); }
    const h = Object.assign({ Authorization: 'Bearer ' + tok, Accept: 'application/json' }, headers || {});
    if (method !== 'GET' && role !== 'city') {
      if (!csrf[role]) {
        const c = await api(role, 'GET', '/csrf');
        csrf[role] = c.csrf_token;
      }
      h['X-CSRF-Token'] = csrf[role];
    }
    if (body) h['Content-Type'] = 'application/json';
    const r = await fetch(path, { method, headers: h, body: body ? JSON.stringify(body) : undefined, cache: 'no-store' });
    const env = await r.json().catch(() => null);
    if (r.status === 403 && env && env.error && env.error.code === 'csrf_token_invalid') delete csrf[role];
    if (r.status === 401) { sessionStorage.removeItem('tok:' + role); showSignIn(); }
    if (!r.ok || !env) throw new ApiError(r.status, env && env.error);
    return env.result;
  }

  // ---- the push channel: SSE over fetch, resumed with Last-Event-ID -----------------------------

  const streams = {};
  function openStream(role, onEvent) {
    if (streams[role]) return;
    const ctl = { abort: new AbortController(), lastId: null, stopped: false };
    streams[role] = ctl;
    (async () => {
      let backoff = 500;
      while (!ctl.stopped) {
        try {
          const tok = await bearer(role);
          if (!tok) { $('stream-state').textContent = 'stream: signed out'; break; }
          const h = { Authorization: 'Bearer ' + tok, Accept: 'text/event-stream' };
          if (ctl.lastId) h['Last-Event-ID'] = ctl.lastId;
          const r = await fetch('/events', { headers: h, signal: ctl.abort.signal, cache: 'no-store' });
          if (!r.ok) throw new Error('events: HTTP ' + r.status);
          $('stream-state').textContent = 'stream: live';
          backoff = 500;
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value;
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const frame = buf.slice(0, i);
              buf = buf.slice(i + 2);
              let id = null, type = 'message', data = '';
              for (const line of frame.split('\n')) {
                if (line.startsWith('id: ')) id = line.slice(4);
                else if (line.startsWith('event: ')) type = line.slice(7);
                else if (line.startsWith('data: ')) data += line.slice(6);
              }
              if (id) ctl.lastId = id;
              if (data) { try { onEvent(type, JSON.parse(data)); } catch (e) { console.error(e); } }
            }
          }
        } catch (e) {
          if (ctl.stopped) break;
          $('stream-state').textContent = 'stream: reconnecting';
        }
        await new Promise((res) => setTimeout(res, backoff));
        backoff = Math.min(backoff * 2, 8000);
      }
    })();
  }

  // ---- the map -----------------------------------------------------------------------------------

  let map;
  const layers = {};
  async function initMap() {
    map = L.map('map', { zoomSnap: 0.25 }).fitBounds([[-6.37, 106.69], [-6.09, 106.97]]);
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution('Jakarta outline approximate, drawn for Antar; no tiles');
    // A 0.05° grid (five fare cells per side) for orientation.
    const grid = L.layerGroup().addTo(map);
    for (let lat = -6.45; lat <= -5.95; lat += 0.05) L.polyline([[lat, 106.6], [lat, 107.05]], { color: '#b8c4cc', weight: 1, interactive: false }).addTo(grid);
    for (let lng = 106.6; lng <= 107.05; lng += 0.05) L.polyline([[-6.45, lng], [-5.95, lng]], { color: '#b8c4cc', weight: 1, interactive: false }).addTo(grid);
    try {
      const geo = await (await fetch('jakarta.geojson')).json();
      L.geoJSON(geo, {
        style: { color: '#0f3d3e', weight: 2, fillColor: '#f6f3e8', fillOpacity: 0.8 },
        pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 2, color: '#556', interactive: false })
          .bindTooltip(f.properties.name, { permanent: true, direction: 'right', className: 'place-label' }),
      }).addTo(map);
    } catch (e) { /* the grid alone still works */ }
    for (const k of ['cells', 'orders', 'drivers', 'mine']) layers[k] = L.layerGroup().addTo(map);
    map.on('click', (ev) => onMapClick(ev.latlng));
  }

  const STATE_COLOR = { available: '#1a9850', offered: '#f39c12', busy: '#2c7fb8', offline: '#999' };

  // ---- City (ops) --------------------------------------------------------------------------------

  let cityTimer = null, inspected = null, inspTimer = null;
  const driverMarkers = new Map();

  async function refreshCity() {
    let c;
    try { c = await api('city', 'GET', '/ops/city'); } catch (e) { if (e.status !== 401) say('city: ' + e.message); return; }
    layers.cells.clearLayers();
    let maxSurge = 1;
    for (const cell of c.cells) {
      const s = Math.max(cell.surge_multiplier.motorcycle, cell.surge_multiplier.car);
      maxSurge = Math.max(maxSurge, s);
      L.rectangle([[cell.south_lat, cell.west_lng], [cell.north_lat, cell.east_lng]], {
        color: '#d73027', weight: 1, fillColor: '#d73027', fillOpacity: Math.min(0.15 + 0.08 * cell.demand, 0.6),
      }).bindTooltip(`cell ${cell.cell}: demand ${cell.demand}, available ${cell.supply.motorcycle} motorcycles / ${cell.supply.car} cars, surge ×${cell.surge_multiplier.motorcycle} / ×${cell.surge_multiplier.car}`).addTo(layers.cells);
    }
    layers.orders.clearLayers();
    for (const o of c.orders) {
      L.circleMarker([o.pickup_lat, o.pickup_lng], { radius: 7, color: '#d7191c', fillColor: '#d7191c', fillOpacity: 0.9 })
        .bindTooltip(`order ${o.order_id} (${o.vehicle_type}, ${rupiah(o.price)}), ${o.attempts} offer(s) so far`)
        .on('click', () => inspect(o.order_id)).addTo(layers.orders);
    }
    const seen = new Set();
    for (const d of c.drivers) {
      seen.add(d.driver_id);
      let m = driverMarkers.get(d.driver_id);
      if (!m) {
        m = L.circleMarker([d.lat, d.lng], { radius: 5, weight: 1 }).addTo(layers.drivers);
        driverMarkers.set(d.driver_id, m);
      }
      m.setLatLng([d.lat, d.lng]);
      m.setStyle({ color: STATE_COLOR[d.state], fillColor: STATE_COLOR[d.state], fillOpacity: 0.85 });
      m.bindTooltip(`driver ${d.driver_id} (${d.vehicle_type}): ${d.state}${d.order_id ? ', order ' + d.order_id : ''}`);
    }
    for (const [id, m] of driverMarkers) if (!seen.has(id)) { m.remove(); driverMarkers.delete(id); }
    const n = (s) => c.drivers.filter((d) => d.state === s).length;
    $('city-stats').replaceChildren(
      el('span', {}, el('b', { textContent: n('available') }), ' available'),
      el('span', {}, el('b', { textContent: n('offered') }), ' offered'),
      el('span', {}, el('b', { textContent: n('busy') }), ' on a trip'),
      el('span', {}, el('b', { textContent: c.orders.length }), ' open orders'),
      el('span', {}, el('b', { textContent: c.cells.length }), ' demand cells'),
      el('span', {}, 'max surge ', el('b', { textContent: '×' + maxSurge })),
    );
  }

  function onCityEvent(type, d) {
    if (type === 'order_status') {
      pushEvent('city-events', `order ${d.order_id} → ${d.status}${d.driver ? ' (driver ' + d.driver.id + ')' : ''}`, () => inspect(d.order_id));
      if (inspected === d.order_id) loadInspector();
    } else if (type === 'offer') {
      pushEvent('city-events', `offer ${d.id}: order ${d.order_id} → a driver, ${rupiah(d.price)}`, () => inspect(d.order_id));
    } else if (type === 'offer_withdrawn') {
      pushEvent('city-events', `offer ${d.offer_id || d.id} withdrawn (order ${d.order_id})`);
    } else if (type === 'driver_position') {
      const m = driverMarkers.get(d.driver_id);
      if (m) m.setLatLng([d.lat, d.lng]);
    }
  }

  function inspect(orderId) {
    inspected = Number(orderId);
    $('order-id').value = inspected;
    $('inspector').hidden = false;
    loadInspector();
    clearInterval(inspTimer);
    inspTimer = setInterval(loadInspector, 3000);
  }

  async function loadInspector() {
    if (!inspected) return;
    let r;
    try { r = await api('city', 'GET', `/ops/orders/${inspected}`); } catch (e) {
      $('insp-title').textContent = `Order ${inspected}: ${e.message}`;
      $('insp-timeline').replaceChildren();
      $('insp-waterfall').replaceChildren();
      return;
    }
    const o = r.order;
    $('insp-title').textContent = `Order ${o.id}: ${o.status}`;
    $('insp-summary').textContent = `${o.vehicle_type}, ${rupiah(o.price)}, ${o.pickup_address} → ${o.dropoff_address}` +
      (o.driver_id ? `, driver ${o.driver_id}` : '');
    $('insp-eta').textContent = etaLine(r.eta);
    const tl = [el('li', { textContent: `created ${fmtTime(o.created_at)}` })];
    for (const s of r.steps) tl.push(el('li', {}, `${s.status} at ${fmtTime(s.at)} `, el('span', { className: 'muted', textContent: 'trace ' + s.trace_id.slice(0, 12) + '…' })));
    $('insp-timeline').replaceChildren(...tl);
    $('insp-waterfall').replaceChildren(...waterfall(r.steps, r.spans));
  }

  // Predicted against actual (docs/ai.md), in city minutes: "pickup: predicted 4.0 min, took
  // 3.5 min; trip: predicted 12.0 min, …". A leg shows what is known of it so far.
  function etaLine(eta) {
    if (!eta) return '';
    const min = (s) => `${(s / 60).toFixed(1)} min`;
    const leg = (name, l) => {
      if (l.predicted_s == null && l.actual_s == null) return null;
      const parts = [];
      if (l.predicted_s != null) parts.push(`predicted ${min(l.predicted_s)}`);
      if (l.actual_s != null) parts.push(`took ${min(l.actual_s)}`);
      return `${name}: ${parts.join(', ')}`;
    };
    const legs = [leg('pickup', eta.pickup), leg('trip', eta.trip)].filter(Boolean);
    if (!legs.length) return '';
    return legs.join('; ') + (eta.clock_speed !== 1 ? ` (city time, clock ×${eta.clock_speed})` : '');
  }

  // One block per step's trace: a bar per span from its start to its end, on the trace's own time
  // axis (first start to last end), in start order: the client's request, then each call.
  function waterfall(steps, spans) {
    const out = [];
    const traces = [];
    for (const st of steps) if (!traces.some((t) => t.id === st.trace_id)) traces.push({ id: st.trace_id, status: st.status });
    if (!spans.length) return [el('p', { className: 'muted', textContent: 'No calls recorded (yet) for this order.' })];
    for (const t of traces) {
      const mine = spans.filter((s) => s.trace_id === t.id);
      if (!mine.length) continue;
      mine.sort((a, b) => a.start_ms - b.start_ms || (a.kind === 'request' ? -1 : 1));
      const t0 = Math.min(...mine.map((s) => s.start_ms));
      const t1 = Math.max(...mine.map((s) => s.start_ms + s.duration_ms));
      const total = Math.max(t1 - t0, 1);
      const box = el('div', { className: 'trace' }, el('div', { className: 'trace-head', textContent: `${t.status} — trace ${t.id.slice(0, 12)}… (${total.toFixed(1)} ms)` }));
      for (const s of mine) {
        const bar = el('div', { className: 'bar' + (s.kind === 'request' ? ' request' : '') + (s.status >= 500 || s.outcome !== 'ok' ? ' bad' : '') });
        bar.style.left = ((s.start_ms - t0) / total * 100).toFixed(2) + '%';
        bar.style.width = Math.max(s.duration_ms / total * 100, 0.5).toFixed(2) + '%';
        const from = s.kind === 'request' ? 'client → edge' : s.from;
        box.append(el('div', { className: 'row span-row' },
          el('div', { className: 'label', title: `${from} → ${s.to} ${s.method} ${s.path}`, textContent: `${from} → ${s.to}` }),
          el('div', { className: 'track' }, bar)));
        box.append(el('div', { className: 'row' }, el('div'), el('div', { className: 'meta', textContent: `${s.method} ${s.path} → ${s.status || s.outcome} (${s.duration_ms.toFixed(1)} ms)` })));
      }
      out.push(box);
    }
    return out.length ? out : [el('p', { className: 'muted', textContent: 'The calls of this order have left the bounded record.' })];
  }

  // ---- Customer ----------------------------------------------------------------------------------

  const cust = { pickup: null, dropoff: null, quote: null, order: null, markers: {}, driver: null };

  function setPoint(which, latlng) {
    cust[which] = latlng;
    if (cust.markers[which]) cust.markers[which].remove();
    cust.markers[which] = L.circleMarker(latlng, { radius: 8, color: which === 'pickup' ? '#1a9850' : '#7b3294', fillOpacity: 0.8 })
      .bindTooltip(which === 'pickup' ? 'pickup' : 'drop-off', { permanent: true, direction: 'top' }).addTo(layers.mine);
    $(which === 'pickup' ? 'c-pickup' : 'c-dropoff').textContent = ll(latlng.lat, latlng.lng);
    cust.quote = null;
    $('c-estimate').disabled = !(cust.pickup && cust.dropoff);
    $('c-order').disabled = !(cust.pickup && cust.dropoff);
  }

  function tripBody() {
    return {
      pickup_lat: +cust.pickup.lat.toFixed(6), pickup_lng: +cust.pickup.lng.toFixed(6), pickup_address: 'Pickup ' + ll(cust.pickup.lat, cust.pickup.lng),
      dropoff_lat: +cust.dropoff.lat.toFixed(6), dropoff_lng: +cust.dropoff.lng.toFixed(6), dropoff_address: 'Drop-off ' + ll(cust.dropoff.lat, cust.dropoff.lng),
      vehicle_type: $('c-vehicle').value,
    };
  }

  async function estimate() {
    const b = tripBody();
    delete b.pickup_address; delete b.dropoff_address;
    const f = await api('customer', 'POST', '/fares/estimate', b);
    cust.quote = f.quote_id;
    $('c-fare').textContent = `Fare ${rupiah(f.price)} (surge ×${f.surge_multiplier}), ${(f.distance_m / 1000).toFixed(1)} km, about ${Math.round(f.duration_s / 60)} min` +
      (f.pickup_eta_s != null ? `; a driver in about ${Math.round(f.pickup_eta_s / 60)} min` : '');
  }

  async function placeOrder() {
    if (!cust.quote) await estimate();
    const b = tripBody();
    if (cust.quote) b.quote_id = cust.quote;
    const o = await api('customer', 'POST', '/orders', b, { 'Idempotency-Key': rnd(12) });
    cust.order = o.id;
    $('c-order-id').textContent = o.id;
    $('c-status').textContent = o.status;
    $('c-cancel').hidden = false;
    $('c-order').disabled = true;
    pushEvent('c-events', `order ${o.id} placed: ${o.status}, ${rupiah(o.price)}`);
  }

  function onCustomerEvent(type, d) {
    if (type === 'order_status') {
      pushEvent('c-events', `order ${d.order_id} → ${d.status}`);
      if (d.order_id === cust.order) {
        $('c-status').textContent = d.status;
        if (d.driver) $('c-driver').textContent = `Driver ${d.driver.name} (${d.driver.vehicle_type}, ${d.driver.plate_number})`;
        if (['completed', 'cancelled', 'expired'].includes(d.status)) { $('c-cancel').hidden = true; $('c-order').disabled = false; }
        if (d.status === 'picked_up') $('c-cancel').hidden = true;
      }
    } else if (type === 'driver_position' && d.order_id === cust.order) {
      if (!cust.driver) cust.driver = L.circleMarker([d.lat, d.lng], { radius: 7, color: '#2c7fb8', fillOpacity: 0.9 }).bindTooltip('your driver', { permanent: true, direction: 'bottom' }).addTo(layers.mine);
      cust.driver.setLatLng([d.lat, d.lng]);
      $('c-driver').dataset.pos = ll(d.lat, d.lng);
    }
  }

  // ---- Driver ------------------------------------------------------------------------------------

  const drv = { pos: null, marker: null, online: false, offer: null, trip: null, timer: null, tick: null };

  function setDriverPos(latlng) {
    drv.pos = latlng;
    if (!drv.marker) drv.marker = L.circleMarker(latlng, { radius: 8, color: '#2c7fb8', fillOpacity: 0.9 }).bindTooltip('you', { permanent: true, direction: 'top' }).addTo(layers.mine);
    drv.marker.setLatLng(latlng);
    $('d-pos').textContent = ll(latlng.lat, latlng.lng);
  }

  async function ping() {
    if (!drv.online || !drv.pos) return;
    // On a trip, move a step towards where the trip goes next.
    const tgt = drv.trip && (drv.trip.status === 'accepted' ? drv.trip.pickup : drv.trip.status === 'picked_up' ? drv.trip.dropoff : null);
    if (tgt) setDriverPos(L.latLng(drv.pos.lat + (tgt[0] - drv.pos.lat) * 0.25, drv.pos.lng + (tgt[1] - drv.pos.lng) * 0.25));
    try { await api('driver', 'PUT', '/drivers/me/location', { lat: +drv.pos.lat.toFixed(6), lng: +drv.pos.lng.toFixed(6) }); } catch (e) { say('location: ' + e.message); }
  }

  async function toggleOnline() {
    if (!drv.pos) setDriverPos(L.latLng(-6.1754, 106.8272));
    if (!drv.online) {
      await api('driver', 'PUT', '/drivers/me/location', { lat: +drv.pos.lat.toFixed(6), lng: +drv.pos.lng.toFixed(6) });
      await api('driver', 'PUT', '/drivers/me/status', { status: 'online' });
      drv.online = true;
      drv.timer = setInterval(ping, 2000);
    } else {
      await api('driver', 'PUT', '/drivers/me/status', { status: 'offline' });
      drv.online = false;
      clearInterval(drv.timer);
    }
    $('d-online').textContent = drv.online ? 'online' : 'offline';
    $('d-online-btn').textContent = drv.online ? 'Go offline' : 'Go online';
  }

  function showOffer(o) {
    drv.offer = o;
    $('d-offer').hidden = false;
    $('d-offer-id').textContent = o.id;
    $('d-offer-text').textContent = `Order ${o.order_id}: ${o.pickup_address} → ${o.dropoff_address}, ${rupiah(o.price)} (${o.vehicle_type})`;
    clearInterval(drv.tick);
    const tick = () => {
      const left = Math.max(0, Math.round((Date.parse(o.expires_at) - Date.now()) / 1000));
      $('d-offer-left').textContent = left;
      if (left <= 0) { clearInterval(drv.tick); $('d-offer').hidden = true; }
    };
    tick();
    drv.tick = setInterval(tick, 500);
  }

  function showTrip() {
    const t = drv.trip;
    $('d-trip').hidden = !t;
    if (!t) return;
    $('d-trip-id').textContent = t.order_id;
    $('d-trip-status').textContent = t.status;
    $('d-pickup').disabled = t.status !== 'accepted';
    $('d-complete').disabled = t.status !== 'picked_up';
  }

  async function accept() {
    const o = drv.offer;
    const r = await api('driver', 'POST', `/offers/${o.id}/accept`);
    clearInterval(drv.tick);
    $('d-offer').hidden = true;
    drv.trip = { order_id: o.order_id, status: r.status || 'accepted', pickup: [o.pickup_lat, o.pickup_lng], dropoff: [o.dropoff_lat, o.dropoff_lng] };
    pushEvent('d-events', `accepted offer ${o.id}: order ${o.order_id}`);
    showTrip();
  }

  async function tripMove(what) {
    const t = drv.trip;
    if (what === 'pickup') setDriverPos(L.latLng(t.pickup[0], t.pickup[1]));
    if (what === 'complete') setDriverPos(L.latLng(t.dropoff[0], t.dropoff[1]));
    const r = await api('driver', 'POST', `/trips/${t.order_id}/${what}`);
    t.status = r.status;
    pushEvent('d-events', `order ${t.order_id} → ${r.status}`);
    if (r.status === 'completed') drv.trip = null;
    showTrip();
  }

  function onDriverEvent(type, d) {
    if (type === 'offer') { pushEvent('d-events', `offer ${d.id} for order ${d.order_id}`); showOffer(d); }
    else if (type === 'offer_withdrawn') {
      pushEvent('d-events', `offer for order ${d.order_id} withdrawn`);
      if (drv.offer && drv.offer.order_id === d.order_id) { clearInterval(drv.tick); $('d-offer').hidden = true; }
    } else if (type === 'order_status') {
      pushEvent('d-events', `order ${d.order_id} → ${d.status}`);
      if (drv.trip && drv.trip.order_id === d.order_id) {
        drv.trip.status = d.status;
        if (['completed', 'cancelled', 'expired'].includes(d.status)) drv.trip = null;
        showTrip();
      }
    }
  }

  // ---- wiring ------------------------------------------------------------------------------------

  function onMapClick(latlng) {
    if (view === 'driver' && !drv.trip) setDriverPos(latlng);
    if (view !== 'customer') return;
    if (cust.pickup && !cust.dropoff) { setPoint('dropoff', latlng); return; }
    // A new trip: a new pickup, and the drop-off to choose again.
    if (cust.markers.dropoff) cust.markers.dropoff.remove();
    cust.dropoff = null;
    $('c-dropoff').textContent = '—';
    setPoint('pickup', latlng);
  }

  function showSignIn() {
    $('signin').hidden = false;
    $('signin-what').textContent = `Sign in as ${CLIENTS[view].what} to use this view.`;
  }

  const guard = (fn) => async (...a) => { say(''); try { await fn(...a); } catch (e) { say(e.message); } };

  async function show(v) {
    view = views.includes(v) ? v : 'city';
    for (const x of views) {
      $('view-' + x).hidden = x !== view;
      $('tab-' + x).classList.toggle('active', x === view);
    }
    layers.mine && layers.mine.eachLayer((l) => l.setStyle && l.setStyle({ opacity: view === 'city' ? 0.3 : 1 }));
    const tok = await bearer(view);
    $('signin').hidden = !!tok;
    if (!tok) { showSignIn(); return; }
    if (view === 'city') {
      $('who-city').textContent = '(operator)';
      refreshCity();
      clearInterval(cityTimer);
      cityTimer = setInterval(refreshCity, 2000);
      openStream('city', onCityEvent);
    } else if (view === 'customer') {
      api('customer', 'GET', '/users/me').then((u) => { $('who-customer').textContent = u.name; }).catch(() => {});
      openStream('customer', onCustomerEvent);
    } else {
      api('driver', 'GET', '/drivers/me').then((u) => { $('who-driver').textContent = `${u.name} (${u.vehicle_type})`; }).catch(() => {});
      openStream('driver', onDriverEvent);
    }
  }

  async function main() {
    await initMap();
    try { await finishSignIn(); } catch (e) { say('Sign-in failed: ' + e.message); }
    $('signin-button').addEventListener('click', guard(() => signIn(view)));
    $('order-open').addEventListener('submit', (e) => { e.preventDefault(); const n = parseInt($('order-id').value, 10); if (n > 0) inspect(n); });
    $('c-estimate').addEventListener('click', guard(estimate));
    $('c-order').addEventListener('click', guard(placeOrder));
    $('c-cancel').addEventListener('click', guard(async () => { await api('customer', 'POST', `/orders/${cust.order}/cancel`, {}); }));
    $('d-online-btn').addEventListener('click', guard(toggleOnline));
    $('d-accept').addEventListener('click', guard(accept));
    $('d-reject').addEventListener('click', guard(async () => { await api('driver', 'POST', `/offers/${drv.offer.id}/reject`); $('d-offer').hidden = true; clearInterval(drv.tick); }));
    $('d-pickup').addEventListener('click', guard(() => tripMove('pickup')));
    $('d-complete').addEventListener('click', guard(() => tripMove('complete')));
    window.addEventListener('hashchange', () => show(location.hash.slice(1)));
    await show(location.hash.slice(1));
  }

  window.addEventListener('DOMContentLoaded', () => { main().catch((e) => say(e.message)); });
})();
