// The demo page: one SockClient (from the UMD script tag, window.Sock) in several channels of the server that
// serves this page. Everything is rendered with textContent: peers' text is never HTML.
;(() => {
  const { SockClient } = window.Sock
  const $ = (id) => document.getElementById(id)
  const el = (tag, cls, text) => {
    const e = document.createElement(tag)
    if (cls) e.className = cls
    if (text !== undefined) e.textContent = text
    return e
  }
  const params = new URLSearchParams(location.search)
  const serverAddress = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
  const clean = (s) =>
    String(s || '')
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 24)

  let name = clean(params.get('name')) || clean(localStorage.getItem('sock-demo-name')) || `guest${Math.floor(1000 + Math.random() * 9000)}`
  let client
  let current = 'general'
  const started = Date.now()
  const channels = new Map() // name -> { messages: [], unread, state, address }
  const transfers = new Map() // key -> { li, progress }

  const time = (d = new Date()) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false })
  const size = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`)
  const hue = (s) => [...s].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7)

  function addChannel(ch) {
    if (channels.has(ch)) return
    channels.set(ch, { messages: [], unread: 0, state: 'connecting', address: '' })
    listen(ch)
    renderChannels()
  }

  function listen(ch) {
    // Answers pings (requests): whoever asks gets our name and how long we have been here, as a reply.
    client.handle(ch, 'ping', () => ({ name, since: started }))
    // Who is in the channel: REST every few seconds, and at once when a sock-client peer joins or leaves.
    client.presence(ch).on('change', () => ch === current && renderPeople())
    client.on(ch, 'message', (text, m) => push(ch, { kind: 'text', from: m.from, text }))
    client.on(ch, 'file', (file, m) => {
      const t = transfers.get(`in:${ch}:${m.from}`)
      transfers.delete(`in:${ch}:${m.from}`)
      const url = URL.createObjectURL(new Blob([file.bytes]))
      if (t) return finishCard(t, url, file)
      push(ch, { kind: 'file', from: m.from, file, url })
    })
  }

  function push(ch, entry) {
    const c = channels.get(ch)
    entry.at = new Date()
    c.messages.push(entry)
    if (ch === current) $('messages').append(renderEntry(entry))
    else c.unread++
    if (ch === current) scroll()
    else renderChannels()
    return entry
  }

  const scroll = () => ($('messages').scrollTop = $('messages').scrollHeight)

  function renderEntry(e) {
    if (e.kind === 'system') return el('li', 'msg system', e.text)
    const li = el('li', `msg${e.from === name ? ' mine' : ''}`)
    const meta = el('div', 'meta')
    meta.append(el('b', '', e.from === name ? 'you' : e.from), ` · ${time(e.at)}`)
    const bubble = el('div', 'bubble')
    li.append(meta, bubble)
    if (e.kind === 'text') bubble.textContent = e.text
    else {
      const card = el('div', 'filecard')
      card.append(el('span', 'icon', (e.file.name.split('.').pop() || 'file').slice(0, 4).toUpperCase()))
      const link = el(e.url ? 'a' : 'span', '', e.file.name)
      if (e.url) Object.assign(link, { href: e.url, download: e.file.name })
      card.append(link, el('span', 'size', e.done === undefined ? size(e.file.size) : `${size(e.file.size)} · sending…`))
      if (e.done !== undefined) {
        const p = el('progress')
        p.max = 1
        p.value = e.done
        card.append(p)
        e.progress = p
        e.sizeEl = card.querySelector('.size')
      }
      bubble.append(card)
    }
    e.li = li
    return li
  }

  function finishCard(entry, url, file) {
    entry.url = url
    entry.file = file
    entry.done = undefined
    if (entry.li) entry.li.replaceWith(renderEntry(entry))
  }

  function renderMessages() {
    const list = $('messages')
    list.replaceChildren(...channels.get(current).messages.map(renderEntry))
    scroll()
  }

  function renderChannels() {
    const ul = $('channels')
    ul.replaceChildren(
      ...[...channels].map(([ch, c]) => {
        const li = el('li', ch === current ? 'active' : '')
        li.dataset.channel = ch
        li.append(el('span', `dot ${c.state}`), el('span', 'cname', `# ${ch}`), c.unread ? el('span', 'unread', String(c.unread)) : el('span'))
        li.append(el('span', 'addr', `${c.state}${c.address ? ` · ${c.address}` : ''}`))
        li.onclick = () => select(ch)
        return li
      }),
    )
    const c = channels.get(current)
    $('state').className = `pill ${c.state}`
    $('state').textContent = c.address ? `${c.state} · ${c.address}` : c.state
  }

  function select(ch) {
    current = ch
    channels.get(ch).unread = 0
    $('title').textContent = `# ${ch}`
    $('text').placeholder = `Message #${ch}`
    $('people-channel').textContent = `#${ch}`
    $('drop-channel').textContent = `#${ch}`
    renderChannels()
    renderMessages()
    renderPeople()
  }

  function renderPeople() {
    const ch = current
    const list = [...client.presence(ch).snapshot()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
    $('people-count').textContent = String(list.length)
    $('people').replaceChildren(
      ...list.map((i) => {
        const li = el('li')
        const av = el('span', 'avatar', i.id.slice(0, 2).toUpperCase())
        av.style.background = `hsl(${hue(i.id)} 55% 52%)`
        li.append(av, el('span', '', i.id))
        if (i.id === client.idOf(ch)) li.append(el('span', 'you', '(you)'))
        li.append(el('span', 'since', `since ${time(i.createdAt)}`))
        if (i.id !== client.idOf(ch)) {
          const b = el('button', 'ghost ping', 'ping')
          b.title = `Send ${i.id} a request and time its reply`
          b.onclick = () => ping(ch, i.id)
          li.append(b)
        }
        return li
      }),
    )
  }

  /** A request addressed to one instance: its reply, or why none came (no answer within 3 s, or it left). */
  async function ping(ch, id) {
    const t0 = performance.now()
    try {
      const r = await client.request(ch, 'ping', undefined, { to: id, timeout: 3000 })
      push(ch, { kind: 'system', text: `${r.name} answered a ping in ${Math.round(performance.now() - t0)} ms (here since ${time(new Date(r.since))})` })
    } catch (e) {
      push(ch, { kind: 'system', text: `no answer from ${id}: ${e.message}` })
    }
  }

  function connect() {
    client?.close()
    client = new SockClient({ id: name })
    client.setup(serverAddress)
    client.on('socket', (event, info) => {
      const c = channels.get(info.channel)
      if (!c) return
      if (event === 'progress') return progress(info)
      if (info.state) c.state = info.state
      c.address = info.address
      if (event === 'error' && info.error) push(info.channel, { kind: 'system', text: info.error.message })
      renderChannels()
    })
    for (const ch of channels.keys()) listen(ch)
    for (const ch of channels.keys()) client.join(ch).catch((e) => push(ch, { kind: 'system', text: e.message }))
  }

  function progress(info) {
    if (info.direction !== 'receive') return // our own sends are tracked by sendFile's onProgress
    const key = `in:${info.channel}:${info.from}`
    let t = transfers.get(key)
    if (!t) {
      t = push(info.channel, { kind: 'file', from: info.from, file: { name: 'incoming file…', size: info.total }, done: 0 })
      transfers.set(key, t)
    }
    t.done = info.done / info.total
    if (t.progress) t.progress.value = t.done
  }

  async function sendFiles(files) {
    const ch = current
    for (const f of files) {
      const fname = f.name.replace(/[:/\\]/g, '_') || 'file'
      const entry = push(ch, { kind: 'file', from: name, file: { name: fname, size: f.size }, done: 0 })
      try {
        await client.sendFile(ch, fname, f, {
          onProgress: (done, total) => {
            entry.done = done / total
            if (entry.progress) entry.progress.value = entry.done
          },
        })
        finishCard(entry, URL.createObjectURL(f), { name: fname, size: f.size })
      } catch (e) {
        push(ch, { kind: 'system', text: `${fname} was not sent: ${e.message}` })
      }
    }
  }

  // UI wiring
  $('server').textContent = serverAddress
  $('name').value = name
  $('name-form').onsubmit = (ev) => {
    ev.preventDefault()
    const next = clean($('name').value)
    if (!next || next === name) return
    name = next
    localStorage.setItem('sock-demo-name', name)
    connect()
  }
  $('add-channel').onsubmit = (ev) => {
    ev.preventDefault()
    const ch = clean($('new-channel').value)
    if (!ch) return
    $('new-channel').value = ''
    addChannel(ch)
    client.join(ch).catch((e) => push(ch, { kind: 'system', text: e.message }))
    select(ch)
  }
  $('composer').onsubmit = (ev) => {
    ev.preventDefault()
    const text = $('text').value.trim()
    if (!text) return
    $('text').value = ''
    const ch = current
    push(ch, { kind: 'text', from: name, text })
    client.signal(ch, 'message', text).catch((e) => push(ch, { kind: 'system', text: `not sent: ${e.message}` }))
  }
  $('file').onchange = () => {
    sendFiles([...$('file').files])
    $('file').value = ''
  }
  const chat = $('chat')
  let depth = 0
  chat.addEventListener('dragenter', (ev) => (ev.preventDefault(), depth++, chat.classList.add('dragging')))
  chat.addEventListener('dragover', (ev) => ev.preventDefault())
  chat.addEventListener('dragleave', () => --depth <= 0 && ((depth = 0), chat.classList.remove('dragging')))
  chat.addEventListener('drop', (ev) => {
    ev.preventDefault()
    depth = 0
    chat.classList.remove('dragging')
    sendFiles([...ev.dataTransfer.files])
  })

  for (const ch of ['general', 'random', 'dev']) channels.set(ch, { messages: [], unread: 0, state: 'connecting', address: '' })
  connect()
  select('general')
})()
