/**
 * The browser UI: plain DOM, bundled by esbuild when the gateway starts. Two WebSockets carry the
 * same `{"message": …}` lines as the JSONL API (browsers cannot stream a request body over
 * HTTP/1.1); the lobby socket stays open during games (the seed's iOS client closes it: G29).
 */
import type { GameMove, LobbyMessage, Player, Team } from '../protocol/Messages.ts'
import { caption, initialUi, PIECES, play, reduce, score, type UiEvent, type UiState, wins } from './UiState.ts'

const HEARTBEAT_MS = 15_000
let state: UiState = initialUi
let lobbySocket: WebSocket | undefined
let gameSocket: WebSocket | undefined
const root = document.getElementById('app')!

function dispatch(e: UiEvent): void {
  state = reduce(state, e)
  render()
}

function socket(path: string, me: Player, onLine: (message: unknown) => void, onClose: () => void): WebSocket {
  const q = new URLSearchParams({ player_id: me.playerId, player_name: me.name, player_team: me.team })
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}?${q}`)
  let beat: ReturnType<typeof setInterval> | undefined
  ws.onopen = () => {
    ws.send('{"message":{}}')
    beat = setInterval(() => ws.send('{"message":{}}'), HEARTBEAT_MS)
  }
  ws.onmessage = (ev) => onLine((JSON.parse(String(ev.data)) as { message: unknown }).message)
  ws.onclose = () => {
    clearInterval(beat)
    onClose()
  }
  return ws
}

function join(name: string, team: Team): void {
  let id = localStorage.getItem('ttf.playerId')
  if (!id) localStorage.setItem('ttf.playerId', (id = crypto.randomUUID()))
  // Two tabs of one browser are one player; ?fresh gives a tab its own.
  if (new URLSearchParams(location.search).has('fresh')) id = crypto.randomUUID()
  const me: Player = { playerId: id, name, team }
  dispatch({ kind: 'join', me })
  lobbySocket = socket(
    '/ws/matchmaking',
    me,
    (m) => onLobby(m as LobbyMessage),
    () => setTimeout(() => state.me && reconnectLobby(), 1000),
  )
  lobbySocket.addEventListener('open', () => lobbySocket!.send(JSON.stringify({ message: { player: me, status: 'connect' } })))
}

function reconnectLobby(): void {
  const me = state.me!
  lobbySocket = socket(
    '/ws/matchmaking',
    me,
    (m) => onLobby(m as LobbyMessage),
    () => setTimeout(reconnectLobby, 1000),
  )
  lobbySocket.addEventListener('open', () => lobbySocket!.send(JSON.stringify({ message: { player: me, status: state.ready ? 'ready' : 'connect' } })))
}

function onLobby(message: LobbyMessage): void {
  const before = state.game?.sessionId
  dispatch({ kind: 'lobbyLine', message })
  if (state.screen === 'game' && state.game && state.game.sessionId !== before && !state.game.result) openGame()
}

function openGame(): void {
  gameSocket?.close()
  gameSocket = socket(
    '/ws/game',
    state.me!,
    (m) => dispatch({ kind: 'gameLine', move: m as GameMove }),
    () => undefined,
  )
}

function send(ws: WebSocket | undefined, message: unknown): void {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ message }))
}

// ── rendering ──

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  e.append(...children)
  return e
}

function render(): void {
  root.replaceChildren(state.screen === 'menu' ? menu() : state.screen === 'lobby' ? lobby() : game())
}

function menu(): HTMLElement {
  const name = el('input', { 'data-testid': 'name', placeholder: 'Your name', maxlength: '64', value: localStorage.getItem('ttf.name') ?? '' })
  const team = el('select', { 'data-testid': 'team' }, el('option', { value: 'fish' }, '🐟 Fish'), el('option', { value: 'rodents' }, '🐹 Rodents'))
  const go = el('button', { 'data-testid': 'play' }, 'Play with all your friends')
  go.onclick = () => {
    const n = name.value.trim()
    if (!n) return name.focus()
    localStorage.setItem('ttf.name', n)
    join(n, team.value as Team)
  }
  return el('main', { class: 'menu' }, el('h1', {}, 'TicTacFish'), name, team, go)
}

function lobby(): HTMLElement {
  const w = wins(state.completed)
  const column = (team: Team) =>
    el(
      'section',
      { class: `team ${team}`, 'data-testid': `team-${team}` },
      el('h2', {}, team === 'fish' ? '🐟 Fish' : '🐹 Rodents'),
      el(
        'ul',
        {},
        ...[...state.lobby.values()]
          .filter((p) => p.player.team === team)
          .map((p) =>
            el('li', { 'data-testid': 'lobby-player' }, `${p.player.name}${p.ready ? ' ✅' : ''} (${w.get(p.player.playerId.toLowerCase()) ?? 0} wins)`),
          ),
      ),
    )
  const s = score(state.completed)
  const button = el('button', { 'data-testid': 'ready' }, state.ready ? 'Cancel' : 'Ready!')
  button.onclick = () => {
    const ready = !state.ready
    send(lobbySocket, { player: state.me, status: ready ? 'ready' : 'connect' })
    dispatch({ kind: 'ready', ready })
  }
  return el(
    'main',
    { class: 'lobby' },
    el('h1', {}, `Hello ${state.me!.name}`),
    el('div', { class: 'columns' }, column('fish'), el('div', { class: 'score', 'data-testid': 'score' }, `${s.fish} : ${s.rodents}`), column('rodents')),
    button,
    el('p', { 'data-testid': 'completed' }, `${state.completed.length} games completed`),
  )
}

function game(): HTMLElement {
  const g = state.game!
  const board = el('div', { class: 'board', 'data-testid': 'board' })
  for (let i = 0; i < 9; i++) {
    const m = g.moves.find((mv) => mv.position === i)
    const cell = el('button', { class: 'cell', 'data-testid': `cell-${i}` }, m ? (PIECES[m.team][m.teamCharacterId] ?? '?') : '')
    cell.onclick = () => {
      const move = play(state, i)
      if (!move) return
      send(gameSocket, move)
      dispatch({ kind: 'moved', move })
    }
    board.append(cell)
  }
  const opponent = [g.playerOne, g.playerTwo].find((p) => p.playerId.toLowerCase() !== state.me!.playerId.toLowerCase())!
  const parts: (Node | string)[] = [el('p', {}, `${state.me!.name} vs ${opponent.name}`), board, el('p', { 'data-testid': 'caption' }, caption(state))]
  if (g.result) {
    const back = el('button', { 'data-testid': 'back' }, 'Back to the lobby')
    back.onclick = () => {
      gameSocket?.close()
      dispatch({ kind: 'backToLobby' })
    }
    parts.push(back)
  }
  return el('main', { class: 'game' }, ...parts)
}

render()
