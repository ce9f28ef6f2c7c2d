/**
 * Scenarios for the simulator: a script of injected faults (crashes, restarts, stalls, partitions,
 * one-way links, joins) and the measurements taken on each (first suspicion, first dead, all live
 * members agree), plus false suspicions and deaths, load and simulation speed. The `shoal sim`
 * CLI and `npm run bench:swim` both run these.
 * @module
 */
import { nodeKey, type SwimStatus } from '../swim/SwimNode.ts'
import { SWIM_DEFAULTS, type SwimSettings } from '../swim/SwimSettings.ts'
import { mixSeed, seededRandom } from './Random.ts'
import { type ChangeRecord, Simulator } from './Simulator.ts'

/** Periodic event-loop freezes of random members. */
export interface StallSpec {
  /** Members frozen at once. */
  readonly count: number
  /** Freeze length in ms. */
  readonly duration: number
  /** A new freeze every this many ms. */
  readonly every: number
}

/** One network split and its healing. */
export interface PartitionSpec {
  /** Start, ms. */
  readonly at: number
  /** Length, ms. */
  readonly duration: number
  /** Share of members on the first side. Default 0.5. */
  readonly fraction?: number
}

/** A simulated run: cluster size, duration, network and the faults to inject. */
export interface ScenarioOptions {
  readonly members: number
  /** Simulated time, ms. */
  readonly duration: number
  readonly seed: number
  readonly loss?: number
  readonly delay?: number
  readonly jitter?: number
  readonly bootstrap?: 'converged' | 'join'
  /** Members crashed (kill -9) at random times in the first 70% of the run. */
  readonly crashes?: number
  /** Members crashed and restarted on the same address with a new uid 2 s later. */
  readonly restarts?: number
  /** Members joining at once (a join storm) at `joinAt` (default 30% of the run). */
  readonly joins?: number
  readonly joinAt?: number
  readonly stalls?: StallSpec
  readonly partition?: PartitionSpec
  /** One-way link failures `[from, to]` for the whole run. */
  readonly oneWay?: readonly (readonly [number, number])[]
  readonly settings?: SwimSettings
  /** Called with the simulator before it runs: add listeners or script more (tests, debugging). */
  readonly inspect?: (sim: Simulator) => void
}

/** One injected fault and what was measured about it. */
export interface InjectedEvent {
  readonly kind: 'crash' | 'restart' | 'join' | 'stall' | 'partition'
  readonly member?: number
  /** Seconds since the start of the run. */
  readonly at: number
  /** Seconds after the event (null: did not happen by the end). */
  firstSuspect?: number | null
  firstDead?: number | null
  /** Crash: every live member marks it dead. Join: every live member knows it. Partition: healed into one cluster. */
  allAgree?: number | null
  /** Join: the newcomer knows every live member. */
  knowsAll?: number | null
  /** Stall: declared dead by anyone (a false death). */
  declaredDead?: boolean
  suspected?: boolean
}

/** The outcome of a run, as `shoal sim --json` prints it. */
export interface ScenarioReport {
  readonly members: number
  readonly durationSeconds: number
  readonly seed: number
  readonly loss: number
  readonly events: InjectedEvent[]
  /** Running members marked suspect, by anyone (stalled ones included). */
  readonly falseSuspicions: number
  /** Running members marked dead outside partitions and one-way faults. */
  readonly falseDeaths: number
  /** Running members marked dead across a partition or one-way fault (expected). */
  readonly partitionDeaths: number
  readonly load: {
    readonly messagesPerMemberPerSecond: number
    readonly bytesPerMemberPerSecond: number
    readonly streamBytesPerMemberPerSecond: number
    readonly largestDatagram: number
    readonly droppedDatagrams: number
  }
  readonly simulation: { readonly wallSeconds: number; readonly speed: number; readonly traceHash: string }
}

/** How often (virtual ms) agreement is checked for joins, restarts and partitions: their resolution. */
export const CHECK_EVERY = 50

/** Runs a scenario and measures it. */
export function runScenario(o: ScenarioOptions): ScenarioReport {
  const sim = new Simulator({
    members: o.members,
    seed: o.seed,
    loss: o.loss ?? 0,
    delay: o.delay ?? 0.5,
    jitter: o.jitter ?? 0.2,
    bootstrap: o.bootstrap ?? 'converged',
    settings: o.settings ?? {},
  })
  sim.record = false
  const random = seededRandom(mixSeed(o.seed, 0x5c3))
  const events: InjectedEvent[] = []
  const m = new Measurements(sim, events, o)
  const pick = pickerOf(o.members, random)

  for (let i = 0; i < (o.crashes ?? 0); i++) {
    const member = pick()
    const at = Math.floor(o.duration * (0.1 + 0.6 * random()))
    sim.at(at, () => m.crash(member))
  }
  for (let i = 0; i < (o.restarts ?? 0); i++) {
    const member = pick()
    const at = Math.floor(o.duration * (0.1 + 0.6 * random()))
    sim.at(at, () => sim.crash(member))
    sim.at(at + 2000, () => m.restart(member, at))
  }
  if (o.joins) sim.at(o.joinAt ?? Math.floor(o.duration * 0.3), () => m.joinStorm(o.joins!))
  if (o.stalls) {
    const s = o.stalls
    for (let t = s.every; t < o.duration; t += s.every) sim.at(t, () => m.stallSome(s.count, s.duration, random))
  }
  if (o.partition) sim.at(o.partition.at, () => m.partition(o.partition!))
  for (const [from, to] of o.oneWay ?? []) sim.block(from, to)
  m.oneWay = (o.oneWay ?? []).length > 0

  for (let t = 1000; t <= o.duration; t += 1000) sim.at(t, () => m.sample())
  o.inspect?.(sim)
  const start = performance.now()
  sim.run(o.duration)
  const wallSeconds = (performance.now() - start) / 1000
  return m.report(wallSeconds)
}

/** Distinct random members, never the seeds (0..2) when there are others, so joiners can always join. */
function pickerOf(n: number, random: () => number): () => number {
  const first = n > 3 ? 3 : 1
  const free = Array.from({ length: Math.max(0, n - first) }, (_, k) => first + k)
  return () => {
    if (free.length === 0) throw new RangeError(`no member left to pick among ${n}: ask for fewer crashes and restarts`)
    return free.splice(Math.floor(random() * free.length), 1)[0]!
  }
}

class Measurements {
  oneWay = false
  #memberSeconds = 0
  #falseSuspicions = 0
  #falseDeaths = 0
  #partitionDeaths = 0
  #partitionUntil = -1
  readonly #tracked = new Map<string, { event: InjectedEvent; start: number; deadBy: Set<number> }>()
  readonly #checks: (() => boolean)[] = []
  readonly #sim: Simulator
  readonly #events: InjectedEvent[]
  readonly #o: ScenarioOptions
  readonly #grace: number

  constructor(sim: Simulator, events: InjectedEvent[], o: ScenarioOptions) {
    this.#sim = sim
    this.#events = events
    this.#o = o
    const s = { ...SWIM_DEFAULTS, ...o.settings }
    this.#grace = (o.settings?.suspicionMax ?? 3 * s.suspicionMin) * (1 + s.maxLocalHealth)
    sim.listeners.push((c) => this.#onChange(c))
    sim.at(CHECK_EVERY, () => this.#poll())
  }

  crash(i: number): void {
    const node = this.#sim.members[i]!.node
    this.#sim.crash(i)
    this.#track(nodeKey(node), { kind: 'crash', member: i, at: this.#sim.now / 1000, firstSuspect: null, firstDead: null, allAgree: null })
  }

  restart(i: number, crashedAt: number): void {
    const old = this.#sim.members[i]!.node
    const event: InjectedEvent = { kind: 'restart', member: i, at: crashedAt / 1000, firstDead: null, allAgree: null }
    this.#tracked.set(nodeKey(old), { event, start: crashedAt, deadBy: new Set() })
    this.#events.push(event)
    this.#sim.restart(i)
    // Restart is done when everyone has the new uid alive and the old one dead.
    this.#until(() => {
      const ok = this.#everyone((o) => (o === i ? true : this.#sim.members[o]!.instance.member(old)?.status !== 'alive' && this.#sim.view(o, i) === 'alive'))
      if (ok) event.allAgree = round((this.#sim.now - crashedAt) / 1000)
      return ok
    })
  }

  joinStorm(count: number): void {
    const start = this.#sim.now
    for (let k = 0; k < count; k++) {
      const i = this.#sim.join()
      const event: InjectedEvent = { kind: 'join', member: i, at: start / 1000, allAgree: null, knowsAll: null }
      this.#events.push(event)
      this.#until(() => {
        if (event.knowsAll === null && this.#everyone((o) => o === i || live(this.#sim.view(i, o)))) event.knowsAll = round((this.#sim.now - start) / 1000)
        if (event.allAgree === null && this.#everyone((o) => live(this.#sim.view(o, i)))) event.allAgree = round((this.#sim.now - start) / 1000)
        return event.knowsAll !== null && event.allAgree !== null
      })
    }
  }

  stallSome(count: number, duration: number, random: () => number): void {
    const up = this.#sim.upMembers()
    for (let k = 0; k < count && up.length > 0; k++) {
      const i = up.splice(Math.floor(random() * up.length), 1)[0]!
      const node = this.#sim.members[i]!.node
      const event: InjectedEvent = { kind: 'stall', member: i, at: this.#sim.now / 1000, suspected: false, declaredDead: false }
      this.#events.push(event)
      const key = nodeKey(node)
      const start = this.#sim.now
      this.#stallWatch.set(key, { event, until: start + duration + this.#grace })
      this.#sim.stall(i, duration)
    }
  }

  readonly #stallWatch = new Map<string, { event: InjectedEvent; until: number }>()

  partition(p: PartitionSpec): void {
    const n = this.#sim.members.length
    const cut = Math.max(1, Math.floor(n * (p.fraction ?? 0.5)))
    const a = [...Array(cut).keys()]
    const b = [...Array(n - cut).keys()].map((i) => i + cut)
    this.#sim.partition([a, b])
    const start = this.#sim.now
    this.#partitionUntil = start + p.duration + this.#grace
    const event: InjectedEvent = { kind: 'partition', at: start / 1000, firstDead: null, allAgree: null }
    this.#events.push(event)
    this.#until(() => {
      if (event.firstDead !== null) return true
      const split = this.#sim.upMembers().every((o) => (o < cut ? b : a).every((x) => !this.#sim.members[x]!.up || this.#sim.view(o, x) === 'dead'))
      if (split) event.firstDead = round((this.#sim.now - start) / 1000)
      return split
    })
    this.#sim.at(start + p.duration, () => {
      this.#sim.heal()
      this.#until(() => {
        const one = this.#everyone((o) => this.#sim.upMembers().every((x) => x === o || live(this.#sim.view(o, x))))
        if (one) event.allAgree = round((this.#sim.now - start - p.duration) / 1000)
        return one
      })
    })
  }

  sample(): void {
    this.#memberSeconds += this.#sim.upMembers().length
  }

  report(wallSeconds: number): ScenarioReport {
    const t = this.#sim.traffic
    const ms = Math.max(1, this.#memberSeconds)
    return {
      members: this.#o.members,
      durationSeconds: this.#o.duration / 1000,
      seed: this.#o.seed,
      loss: this.#o.loss ?? 0,
      events: this.#events,
      falseSuspicions: this.#falseSuspicions,
      falseDeaths: this.#falseDeaths,
      partitionDeaths: this.#partitionDeaths,
      load: {
        messagesPerMemberPerSecond: round(t.datagrams / ms),
        bytesPerMemberPerSecond: round(t.bytes / ms),
        streamBytesPerMemberPerSecond: round(t.streamBytes / ms),
        largestDatagram: t.largest,
        droppedDatagrams: t.dropped,
      },
      simulation: { wallSeconds: round(wallSeconds), speed: round(this.#o.duration / 1000 / wallSeconds), traceHash: this.#sim.traceHash() },
    }
  }

  #track(key: string, event: InjectedEvent): void {
    this.#events.push(event)
    this.#tracked.set(key, { event, start: this.#sim.now, deadBy: new Set() })
  }

  #everyone(pred: (observer: number) => boolean): boolean {
    return this.#sim.upMembers().every(pred)
  }

  #until(check: () => boolean): void {
    if (!check()) this.#checks.push(check)
  }

  #poll(): void {
    for (let i = this.#checks.length - 1; i >= 0; i--) if (this.#checks[i]!()) this.#checks.splice(i, 1)
    this.#sim.at(this.#sim.now + CHECK_EVERY, () => this.#poll())
  }

  #onChange(c: ChangeRecord): void {
    const tracked = this.#tracked.get(c.subject)
    if (tracked) return this.#onTracked(c, tracked)
    const subject = this.#sim.runningIndex(c.subject)
    if (subject === undefined) return
    const stall = this.#stallWatch.get(c.subject)
    if (stall && c.time <= stall.until) {
      if (c.status === 'suspect') stall.event.suspected = true
      if (c.status === 'dead') stall.event.declaredDead = true
    }
    if (c.status === 'suspect') this.#falseSuspicions++
    if (c.status !== 'dead') return
    if (c.time <= this.#partitionUntil || this.oneWay) this.#partitionDeaths++
    else this.#falseDeaths++
  }

  #onTracked(c: ChangeRecord, t: { event: InjectedEvent; start: number; deadBy: Set<number> }): void {
    const e = t.event
    const since = round((c.time - t.start) / 1000)
    if (c.status === 'suspect' && e.firstSuspect === null) e.firstSuspect = since
    if (c.status !== 'dead' && c.status !== 'left') return
    if (e.firstDead === null) e.firstDead = since
    t.deadBy.add(c.observer)
    if (e.kind === 'crash' && e.allAgree === null && this.#everyone((o) => t.deadBy.has(o) || o === e.member)) e.allAgree = since
  }
}

function live(s: SwimStatus | undefined): boolean {
  return s === 'alive' || s === 'suspect'
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
