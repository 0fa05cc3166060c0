// Ferrio chat: the page. Plain JavaScript on the official socket.io-client, served by the
// Rust server at /socket.io/socket.io.min.js. Event names and payloads: apps/chat/src/chat.rs.
(() => {
  'use strict';

  const MAX_FILE_BYTES = 1024 * 1024;
  const ACK_TIMEOUT = 10000;
  const TYPING_IDLE = 2500;
  const TYPING_SHOWN = 5000;
  const NEWS_KEPT = 30;

  const params = new URLSearchParams(location.search);
  const pollingOnly = params.get('transport') === 'polling';

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  };

  const state = {
    me: null,            // {id, nick}
    socket: null,
    news: null,
    rooms: [],           // [{name, members}]
    users: [],           // [{id, nick}]
    joined: new Set(),   // room names this page is in
    convs: new Map(),    // key ('#room' or '@nick') -> conversation
    active: null,        // key of the open conversation
    connectedOnce: false,
    typingSent: null,    // room we told others we are typing in
    typingTimer: 0,
  };

  // ---------------------------------------------------------------- sign-in

  const transportName = pollingOnly ? 'HTTP long-polling only' : 'WebSocket (after a polling handshake)';
  $('login-transport').textContent = transportName;
  $('nick').value = localStorage.getItem('ferrio-chat-nick') || '';

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const nick = $('nick').value.trim();
    if (!nick) return;
    localStorage.setItem('ferrio-chat-nick', nick);
    $('login-error').textContent = '';
    start(nick);
  });

  function start(nick) {
    $('login').hidden = true;
    $('app').hidden = false;
    $('me').textContent = nick;
    const switchLink = $('transport-switch');
    switchLink.textContent = pollingOnly ? 'use WebSocket' : 'use polling only';
    switchLink.href = pollingOnly ? '?' : '?transport=polling';

    const opts = {
      auth: { nick },
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      ...(pollingOnly ? { transports: ['polling'] } : {}),
    };
    const socket = io(opts);
    // Same origin, same Manager: /news shares the connection (one Engine.IO session).
    const news = io('/news', opts);
    state.socket = socket;
    state.news = news;
    window.chat = { socket, news, state };
    bindChat(socket);
    bindNews(news);
    setStatus('connecting', 'Connecting…');
  }

  // ---------------------------------------------------------------- connection status

  function transportLabel() {
    const t = state.socket && state.socket.io.engine && state.socket.io.engine.transport;
    return t ? (t.name === 'websocket' ? 'WebSocket' : 'HTTP long-polling') : '';
  }

  function setStatus(kind, text) {
    const s = $('status');
    s.dataset.state = kind;
    document.body.dataset.conn = kind;
    $('status-text').textContent = text;
    const banner = $('banner');
    if (kind === 'connected') {
      banner.hidden = true;
    } else if (state.connectedOnce) {
      banner.hidden = false;
      banner.textContent = kind === 'reconnecting'
        ? `Connection lost. ${text} Messages you send now are sent once it is back.`
        : text;
    }
    $('transport').textContent = transportLabel() || transportName;
    updateComposer();
  }

  function showConnected() {
    setStatus('connected', `Connected · ${transportLabel()}`);
  }

  // ---------------------------------------------------------------- chat namespace

  function bindChat(socket) {
    socket.on('connect', () => {
      showConnected();
      socket.io.engine.once('upgrade', showConnected);
    });

    socket.on('disconnect', (reason) => {
      for (const conv of state.convs.values()) conv.typing.clear();
      renderTyping();
      if (reason === 'io server disconnect' || reason === 'io client disconnect') {
        setStatus('disconnected', 'Disconnected by the server.');
      } else {
        setStatus('reconnecting', 'Reconnecting…');
        systemEverywhere(`Connection lost (${reason}).`);
      }
    });

    socket.io.on('reconnect_attempt', (n) => setStatus('reconnecting', `Reconnecting… (attempt ${n})`));
    socket.io.on('reconnect_failed', () => setStatus('disconnected', 'Could not reconnect. Reload the page.'));

    socket.on('connect_error', (err) => {
      if (!socket.active) {
        // Refused by the middleware (no nickname): back to the sign-in form.
        $('login-error').textContent = err.message;
        $('login').hidden = false;
        $('app').hidden = true;
        return;
      }
      setStatus('reconnecting', `Reconnecting… (${err.message})`);
    });

    socket.on('welcome', (w) => {
      const wasConnected = state.connectedOnce;
      const oldId = state.me && state.me.id;
      state.me = { id: w.id, nick: w.nick };
      state.connectedOnce = true;
      renderRooms(w.rooms);
      renderUsers(w.users);
      if (w.recovered) {
        systemEverywhere('Reconnected: session recovered, missed messages replayed.');
        toast('Connection recovered');
      } else if (!wasConnected) {
        joinRoom('lobby', true);
      } else {
        // A new session (the server restarted): join the same rooms again.
        systemEverywhere('Reconnected with a new session; rejoining rooms.');
        toast('Reconnected');
        const rooms = [...state.joined];
        state.joined.clear();
        for (const room of rooms) joinRoom(room, false);
        if (oldId) renderUsers(state.users);
      }
      showConnected();
    });

    socket.on('rooms', renderRooms);
    socket.on('users', renderUsers);

    socket.on('message', (m) => {
      addItem(roomConv(m.room), { kind: 'message', from: m.from, text: m.text, ts: m.ts });
      clearTyping(m.room, m.from.id);
    });

    socket.on('system', (m) => addItem(roomConv(m.room), { kind: 'system', text: m.text, ts: m.ts }));

    socket.on('typing', (t) => {
      if (!state.joined.has(t.room)) return;
      const conv = roomConv(t.room);
      const prev = conv.typing.get(t.from.id);
      if (prev) clearTimeout(prev.timer);
      if (t.typing) {
        const timer = setTimeout(() => clearTyping(t.room, t.from.id), TYPING_SHOWN);
        conv.typing.set(t.from.id, { nick: t.from.nick, timer });
      } else {
        conv.typing.delete(t.from.id);
      }
      renderTyping();
    });

    socket.on('private', (m, ack) => {
      const conv = dmConv(m.from);
      addItem(conv, { kind: 'message', from: m.from, text: m.text, ts: m.ts });
      if (typeof ack === 'function') ack({ ok: true });
    });

    socket.on('file', (f, ack) => {
      const blob = new Blob([f.data], { type: f.type });
      addItem(roomConv(f.room), {
        kind: 'file', from: f.from, ts: f.ts, name: f.name, type: f.type, size: f.size,
        url: URL.createObjectURL(blob),
      });
      if (typeof ack === 'function') ack({ ok: true });
    });
  }

  function joinRoom(name, open) {
    state.socket.timeout(ACK_TIMEOUT).emit('join', name, (err, res) => {
      if (err) return toast(`Could not join #${name}: no answer from the server`, true);
      if (res.error) return toast(res.error, true);
      const conv = roomConv(res.room);
      const fresh = !state.joined.has(res.room);
      state.joined.add(res.room);
      if (fresh && conv.items.length === 0) {
        for (const h of res.history) {
          if (h.kind === 'message') addItem(conv, { kind: 'message', from: h.from, text: h.text, ts: h.ts }, true);
          else addItem(conv, { kind: 'system', text: h.text, ts: h.ts }, true);
        }
        addItem(conv, { kind: 'system', text: `You joined #${res.room}`, ts: Date.now() }, true);
      }
      conv.members = res.members.length;
      if (open || !state.active) openConv(conv.key);
      renderRooms(state.rooms);
    });
  }

  function leaveRoom(name) {
    state.socket.timeout(ACK_TIMEOUT).emit('leave', name, (err, res) => {
      if (err) return toast(`Could not leave #${name}`, true);
      if (res.error) return toast(res.error, true);
      state.joined.delete(name);
      const key = '#' + name;
      addItem(roomConv(name), { kind: 'system', text: `You left #${name}`, ts: Date.now() }, true);
      if (state.active === key) {
        const next = [...state.joined][0];
        openConv(next ? '#' + next : null);
      }
      renderRooms(state.rooms);
    });
  }

  // ---------------------------------------------------------------- conversations

  function newConv(key, kind, title) {
    const list = el('div', { class: 'conv', 'data-conv': key });
    const conv = { key, kind, title, items: [], unread: 0, list, typing: new Map(), members: 0, peer: null };
    state.convs.set(key, conv);
    return conv;
  }

  function roomConv(room) {
    return state.convs.get('#' + room) || newConv('#' + room, 'room', '#' + room);
  }

  function dmConv(peer) {
    const key = '@' + peer.nick;
    const conv = state.convs.get(key) || newConv(key, 'dm', '@' + peer.nick);
    conv.peer = peer;
    renderDms();
    return conv;
  }

  function openConv(key) {
    state.active = key;
    const box = $('messages');
    box.replaceChildren();
    const conv = key && state.convs.get(key);
    if (conv) {
      conv.unread = 0;
      box.append(conv.list);
      box.scrollTop = box.scrollHeight;
    } else {
      box.append(el('div', { class: 'empty', text: 'Join a room on the left to start chatting.' }));
    }
    $('conv-title').textContent = conv ? conv.title : 'No room open';
    renderRooms(state.rooms);
    renderDms();
    renderTyping();
    updateComposer();
    stopTyping();
    if (conv) $('text').focus();
  }

  function activeConv() {
    return state.active ? state.convs.get(state.active) : null;
  }

  function addItem(conv, item, quiet) {
    const box = $('messages');
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    conv.items.push(item);
    item.node = renderItem(item);
    conv.list.append(item.node);
    if (conv.key === state.active) {
      if (nearBottom || (item.from && state.me && item.from.id === state.me.id)) {
        box.scrollTop = box.scrollHeight;
      }
    } else if (!quiet && item.kind !== 'system') {
      conv.unread += 1;
      renderRooms(state.rooms);
      renderDms();
    }
    return item;
  }

  function systemEverywhere(text) {
    for (const conv of state.convs.values()) {
      if (conv.kind === 'room' && !state.joined.has(conv.title.slice(1))) continue;
      addItem(conv, { kind: 'system', text, ts: Date.now() }, true);
    }
  }

  function hue(s) {
    let h = 0;
    for (const c of s) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function time(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function size(n) {
    return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(2)} MiB`;
  }

  function renderItem(item) {
    if (item.kind === 'system') {
      return el('div', { class: 'item system', 'data-kind': 'system' },
        el('span', { text: item.text }), el('time', { text: time(item.ts) }));
    }
    const mine = state.me && item.from.id === state.me.id;
    const avatar = el('div', { class: 'avatar', text: item.from.nick.slice(0, 1).toUpperCase() });
    avatar.style.background = `hsl(${hue(item.from.nick)} 55% 45%)`;
    const meta = el('div', { class: 'meta' },
      el('span', { class: 'nick', text: mine ? `${item.from.nick} (you)` : item.from.nick }),
      el('time', { text: time(item.ts), title: new Date(item.ts).toLocaleString() }));
    const body = el('div', { class: 'body' }, meta);
    if (item.kind === 'message') {
      body.append(el('div', { class: 'text', text: item.text }));
    } else {
      body.append(fileBlock(item));
    }
    if (mine) {
      item.statusNode = el('div', { class: 'delivery', 'data-state': 'pending', text: 'Sending…' });
      body.append(item.statusNode);
    }
    return el('div', { class: `item ${item.kind}${mine ? ' mine' : ''}`, 'data-kind': item.kind }, avatar, body);
  }

  function fileBlock(item) {
    if (item.type.startsWith('image/')) {
      const img = el('img', { src: item.url, alt: item.name, class: 'shared-image', loading: 'lazy' });
      return el('a', { href: item.url, target: '_blank', rel: 'noopener', class: 'attachment image', title: `${item.name} · ${size(item.size)}` }, img);
    }
    return el('a', { href: item.url, download: item.name, class: 'attachment' },
      el('span', { class: 'file-icon', text: '⬇' }),
      el('span', { class: 'file-name', text: item.name }),
      el('span', { class: 'muted small', text: size(item.size) }));
  }

  function setDelivery(item, kind, text) {
    if (!item.statusNode) return;
    item.statusNode.dataset.state = kind;
    item.statusNode.textContent = text;
  }

  // ---------------------------------------------------------------- sending

  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('text');
    const text = input.value.trim();
    const conv = activeConv();
    if (!text || !conv) return;
    input.value = '';
    stopTyping();
    const item = addItem(conv, { kind: 'message', from: state.me, text, ts: Date.now() });
    if (conv.kind === 'room') {
      const room = conv.title.slice(1);
      state.socket.timeout(ACK_TIMEOUT).emit('message', { room, text }, (err, res) => {
        if (err) return setDelivery(item, 'failed', 'Not confirmed (no answer from the server)');
        if (res.error) return setDelivery(item, 'failed', `Not sent: ${res.error}`);
        setDelivery(item, 'delivered', res.recipients === 0
          ? '✓ Sent (nobody else in the room)'
          : `✓ Delivered to ${res.recipients} ${res.recipients === 1 ? 'person' : 'people'}`);
      });
    } else {
      const to = conv.peer;
      state.socket.timeout(ACK_TIMEOUT).emit('private', { to: to.id, text }, (err, res) => {
        if (err) return setDelivery(item, 'failed', 'Not confirmed (no answer from the server)');
        if (res.error) return setDelivery(item, 'failed', `Not delivered: ${res.error}`);
        setDelivery(item, res.delivered ? 'delivered' : 'sent',
          res.delivered ? `✓✓ Delivered to ${to.nick}` : `✓ Sent; ${to.nick} did not confirm`);
      });
    }
  });

  $('text').addEventListener('input', () => {
    const conv = activeConv();
    if (!conv || conv.kind !== 'room') return;
    const room = conv.title.slice(1);
    if ($('text').value.trim() === '') return stopTyping();
    if (state.typingSent !== room) {
      stopTyping();
      state.typingSent = room;
      state.socket.emit('typing', { room, typing: true });
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE);
  });

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent && state.socket) {
      state.socket.emit('typing', { room: state.typingSent, typing: false });
    }
    state.typingSent = null;
  }

  function clearTyping(room, id) {
    const conv = state.convs.get('#' + room);
    if (!conv) return;
    const t = conv.typing.get(id);
    if (t) clearTimeout(t.timer);
    conv.typing.delete(id);
    renderTyping();
  }

  function renderTyping() {
    const conv = activeConv();
    const names = conv ? [...conv.typing.values()].map((t) => t.nick) : [];
    const text = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
          : `${names.length} people are typing…`;
    $('typing').textContent = text;
  }

  // Files: the attach button, drag and drop, or paste.
  $('attach').addEventListener('click', () => $('file').click());
  $('file').addEventListener('change', () => {
    const f = $('file').files[0];
    $('file').value = '';
    if (f) shareFile(f);
  });
  const main = $('main');
  main.addEventListener('dragover', (e) => {
    if (!canShare()) return;
    e.preventDefault();
    $('drop').hidden = false;
  });
  main.addEventListener('dragleave', (e) => {
    if (e.target === $('drop')) $('drop').hidden = true;
  });
  main.addEventListener('drop', (e) => {
    e.preventDefault();
    $('drop').hidden = true;
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f && canShare()) shareFile(f);
  });
  $('text').addEventListener('paste', (e) => {
    const f = e.clipboardData && e.clipboardData.files[0];
    if (f && canShare()) {
      e.preventDefault();
      shareFile(f);
    }
  });

  function canShare() {
    const conv = activeConv();
    return conv && conv.kind === 'room';
  }

  async function shareFile(file) {
    const conv = activeConv();
    if (!conv || conv.kind !== 'room') return toast('Files can be shared in rooms only', true);
    if (file.size > MAX_FILE_BYTES) return toast(`${file.name} is ${size(file.size)}; the limit is 1 MiB`, true);
    if (file.size === 0) return toast(`${file.name} is empty`, true);
    const room = conv.title.slice(1);
    const item = addItem(conv, {
      kind: 'file', from: state.me, ts: Date.now(), name: file.name,
      type: file.type || 'application/octet-stream', size: file.size, url: URL.createObjectURL(file),
    });
    const data = await file.arrayBuffer();
    state.socket.timeout(ACK_TIMEOUT + 5000).emit('file', { room, name: file.name, type: item.type, data }, (err, res) => {
      if (err) return setDelivery(item, 'failed', 'Not confirmed (no answer from the server)');
      if (res.error) return setDelivery(item, 'failed', `Not shared: ${res.error}`);
      setDelivery(item, 'delivered', res.recipients === 0
        ? '✓ Shared (nobody else in the room)'
        : `✓ Received by ${res.delivered} of ${res.recipients}`);
    });
  }

  function updateComposer() {
    const conv = activeConv();
    const enabled = !!conv && (conv.kind === 'dm' || state.joined.has(conv.title.slice(1)));
    $('text').disabled = !enabled;
    $('send').disabled = !enabled;
    $('attach').disabled = !enabled || conv.kind !== 'room';
    $('text').placeholder = !conv ? 'Join a room first'
      : conv.kind === 'room' ? `Message ${conv.title}` : `Private message to ${conv.peer.nick}`;
    if (conv) {
      const room = conv.kind === 'room' && state.rooms.find((r) => '#' + r.name === conv.key);
      $('conv-sub').textContent = conv.kind === 'room'
        ? `${room ? room.members : 0} ${room && room.members === 1 ? 'member' : 'members'}`
        : `Private conversation${online(conv.peer) ? '' : ' · offline'}`;
    } else {
      $('conv-sub').textContent = '';
    }
  }

  // ---------------------------------------------------------------- sidebar

  function renderRooms(rooms) {
    state.rooms = rooms;
    const ul = $('rooms');
    ul.replaceChildren();
    for (const r of rooms) {
      const key = '#' + r.name;
      const joined = state.joined.has(r.name);
      const conv = state.convs.get(key);
      const li = el('li', { class: `room${state.active === key ? ' active' : ''}${joined ? ' joined' : ''}`, 'data-room': r.name },
        el('button', {
          class: 'room-name', type: 'button', text: key,
          onclick: () => (joined ? openConv(key) : joinRoom(r.name, true)),
        }),
        conv && conv.unread ? el('span', { class: 'badge', text: String(conv.unread) }) : null,
        el('span', { class: 'count', title: 'members', text: String(r.members) }),
        el('button', {
          class: `small-btn ${joined ? 'leave' : 'join'}`, type: 'button', text: joined ? 'Leave' : 'Join',
          onclick: () => (joined ? leaveRoom(r.name) : joinRoom(r.name, true)),
        }));
      ul.append(li);
    }
    updateComposer();
  }

  function online(peer) {
    return peer && state.users.some((u) => u.id === peer.id);
  }

  function renderUsers(users) {
    state.users = users;
    // After a server restart ids change: keep private conversations by nickname.
    for (const conv of state.convs.values()) {
      if (conv.kind !== 'dm') continue;
      const now = users.find((u) => u.nick === conv.peer.nick);
      if (now) conv.peer = now;
    }
    const ul = $('users');
    ul.replaceChildren();
    for (const u of users) {
      const mine = state.me && u.id === state.me.id;
      ul.append(el('li', {},
        el('button', {
          class: 'user', type: 'button', disabled: mine, 'data-user': u.nick,
          title: mine ? 'You' : `Private message to ${u.nick}`,
          onclick: () => openConv(dmConv(u).key),
        }, el('span', { class: 'presence' }), el('span', { text: mine ? `${u.nick} (you)` : u.nick }))));
    }
    $('online-count').textContent = String(users.length);
    renderDms();
    updateComposer();
  }

  function renderDms() {
    const dms = [...state.convs.values()].filter((c) => c.kind === 'dm');
    $('dms-panel').hidden = dms.length === 0;
    const ul = $('dms');
    ul.replaceChildren();
    for (const c of dms) {
      ul.append(el('li', { class: `room${state.active === c.key ? ' active' : ''}`, 'data-dm': c.peer.nick },
        el('button', { class: 'room-name', type: 'button', text: c.title, onclick: () => openConv(c.key) }),
        c.unread ? el('span', { class: 'badge', text: String(c.unread) }) : null,
        el('span', { class: `presence${online(c.peer) ? '' : ' off'}` })));
    }
  }

  $('new-room').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('new-room-name').value.trim().replace(/^#/, '').toLowerCase();
    if (!name) return;
    $('new-room-name').value = '';
    if (state.joined.has(name)) openConv('#' + name);
    else joinRoom(name, true);
  });

  // ---------------------------------------------------------------- news namespace

  function bindNews(news) {
    const ol = $('news');
    const add = (h, fresh) => {
      const li = el('li', { class: `headline ${h.kind}${fresh ? ' fresh' : ''}`, 'data-id': `${h.id}-${h.ts}` },
        el('div', { class: 'headline-meta' },
          el('span', { class: 'kind', text: h.kind === 'stats' ? 'Server' : 'Tip' }),
          el('time', { text: time(h.ts) })),
        el('div', { class: 'headline-title', text: h.title }));
      ol.prepend(li);
      while (ol.children.length > NEWS_KEPT) ol.lastChild.remove();
    };
    news.on('connect', () => { $('news-status').dataset.state = 'on'; });
    news.on('disconnect', () => { $('news-status').dataset.state = 'off'; });
    news.on('headlines', (items) => {
      const seen = new Set([...ol.children].map((li) => li.dataset.id));
      for (const h of items) if (!seen.has(`${h.id}-${h.ts}`)) add(h, false);
    });
    news.on('headline', (h) => add(h, true));
  }

  // ---------------------------------------------------------------- toasts

  function toast(text, error) {
    const t = el('div', { class: `toast${error ? ' error' : ''}`, role: error ? 'alert' : 'status', text });
    $('toasts').append(t);
    setTimeout(() => t.remove(), 4000);
  }
})();
