/**
 * The detection-time plot of `npm run bench:swim` as a hand-written SVG (no plotting dependency):
 * seconds after a crash against cluster size on a log scale, with the 8 s target dashed.
 * @module
 */
import type { DetectionRow } from './results.ts'

const W = 720
const H = 420
const M = { left: 64, right: 24, top: 48, bottom: 56 }
const X_MIN = 10
const X_MAX = 1000
const X_TICKS = [10, 20, 50, 100, 200, 500, 1000]
const FONT = 'font-family="Helvetica, Arial, sans-serif"'

interface Series {
  readonly label: string
  readonly color: string
  readonly marker: 'circle' | 'square' | 'triangle'
  readonly dash?: string
  readonly value: (r: DetectionRow) => number
}

const SERIES: readonly Series[] = [
  { label: 'all agree, p99', color: '#c0392b', marker: 'triangle', value: (r) => r.allAgree.p99 },
  { label: 'all agree, p50', color: '#1f5fa8', marker: 'circle', value: (r) => r.allAgree.p50 },
  { label: 'first dead, p50', color: '#2e8b57', marker: 'square', dash: '6 4', value: (r) => r.firstDead.p50 },
]

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

function f(v: number): string {
  return v.toFixed(1)
}

function marker(kind: Series['marker'], x: number, y: number, color: string): string {
  switch (kind) {
    case 'circle':
      return `<circle cx="${f(x)}" cy="${f(y)}" r="4" fill="${color}"/>`
    case 'square':
      return `<rect x="${f(x - 3.5)}" y="${f(y - 3.5)}" width="7" height="7" fill="${color}"/>`
    case 'triangle':
      return `<path d="M${f(x)} ${f(y - 5)} L${f(x + 4.5)} ${f(y + 3.5)} L${f(x - 4.5)} ${f(y + 3.5)} Z" fill="${color}"/>`
  }
}

/**
 * Renders the plot. `rows` are the flatness sizes; points that were not detected within the run
 * (+∞) are left out and said so under the title. `target` is the dashed line, in seconds.
 */
export function detectionSvg(rows: readonly DetectionRow[], target: number, subtitle: string): string {
  const plotW = W - M.left - M.right
  const plotH = H - M.top - M.bottom
  const finite = rows.flatMap((r) => SERIES.map((s) => s.value(r))).filter(Number.isFinite)
  const yMax = Math.max(10, Math.ceil(Math.max(target, ...finite) + 1))
  const yStep = yMax <= 12 ? 1 : yMax <= 24 ? 2 : 5
  const x = (n: number): number => M.left + ((Math.log10(n) - Math.log10(X_MIN)) / (Math.log10(X_MAX) - Math.log10(X_MIN))) * plotW
  const y = (s: number): number => M.top + plotH - (s / yMax) * plotH
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold" fill="#222">SWIM crash detection time against cluster size</text>`)
  out.push(`<text x="${W / 2}" y="40" text-anchor="middle" font-size="12" fill="#555">${esc(subtitle)}</text>`)

  // Grid, ticks and tick labels.
  for (let s = 0; s <= yMax; s += yStep) {
    out.push(`<line x1="${M.left}" y1="${f(y(s))}" x2="${W - M.right}" y2="${f(y(s))}" stroke="#e3e3e3" stroke-width="1"/>`)
    out.push(`<text x="${M.left - 8}" y="${f(y(s) + 4)}" text-anchor="end" font-size="12" fill="#333">${s}</text>`)
  }
  for (let decade = X_MIN; decade < X_MAX; decade *= 10) {
    for (let k = 2; k <= 9; k++) {
      const n = decade * k
      out.push(`<line x1="${f(x(n))}" y1="${M.top + plotH}" x2="${f(x(n))}" y2="${M.top + plotH + 3}" stroke="#999" stroke-width="1"/>`)
    }
  }
  for (const n of X_TICKS) {
    out.push(`<line x1="${f(x(n))}" y1="${M.top}" x2="${f(x(n))}" y2="${M.top + plotH}" stroke="#e3e3e3" stroke-width="1"/>`)
    out.push(`<line x1="${f(x(n))}" y1="${M.top + plotH}" x2="${f(x(n))}" y2="${M.top + plotH + 6}" stroke="#333" stroke-width="1"/>`)
    out.push(`<text x="${f(x(n))}" y="${M.top + plotH + 20}" text-anchor="middle" font-size="12" fill="#333">${n.toLocaleString('en-US')}</text>`)
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333" stroke-width="1"/>`)

  // Axis labels.
  out.push(`<text x="${M.left + plotW / 2}" y="${H - 14}" text-anchor="middle" font-size="13" fill="#222">cluster size (members, log scale)</text>`)
  out.push(`<text transform="translate(18 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">seconds after the crash</text>`)

  // Target.
  out.push(`<line x1="${M.left}" y1="${f(y(target))}" x2="${W - M.right}" y2="${f(y(target))}" stroke="#d35400" stroke-width="1.5" stroke-dasharray="8 5"/>`)
  out.push(`<text x="${f(x(150))}" y="${f(y(target) - 6)}" text-anchor="middle" font-size="12" fill="#d35400">target: all agree within ${target} s</text>`)

  // Series.
  const sorted = [...rows].sort((a, b) => a.members - b.members)
  for (const s of SERIES) {
    const points = sorted.filter((r) => Number.isFinite(s.value(r))).map((r) => [x(r.members), y(s.value(r))] as const)
    if (points.length > 1) {
      const d = points.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${f(px)} ${f(py)}`).join(' ')
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`)
    }
    for (const [px, py] of points) out.push(marker(s.marker, px, py, s.color))
  }

  // Legend, bottom right inside the plot: nothing is declared dead before the 3 s minimum suspicion timeout.
  const legendW = 176
  const legendH = SERIES.length * 20 + 28
  const lx = W - M.right - legendW - 12
  const ly = M.top + plotH - legendH - 12
  out.push(`<rect x="${lx}" y="${ly}" width="${legendW}" height="${legendH}" fill="#ffffff" fill-opacity="0.92" stroke="#bbb" stroke-width="1"/>`)
  SERIES.forEach((s, i) => {
    const cy = ly + 16 + i * 20
    out.push(
      `<line x1="${lx + 10}" y1="${cy}" x2="${lx + 40}" y2="${cy}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    )
    out.push(marker(s.marker, lx + 25, cy, s.color))
    out.push(`<text x="${lx + 48}" y="${cy + 4}" font-size="12" fill="#222">${esc(s.label)}</text>`)
  })
  const ty = ly + 16 + SERIES.length * 20
  out.push(`<line x1="${lx + 10}" y1="${ty}" x2="${lx + 40}" y2="${ty}" stroke="#d35400" stroke-width="1.5" stroke-dasharray="8 5"/>`)
  out.push(`<text x="${lx + 48}" y="${ty + 4}" font-size="12" fill="#222">target (${target} s)</text>`)

  const missing = rows.filter((r) => SERIES.some((s) => !Number.isFinite(s.value(r)))).map((r) => r.members)
  if (missing.length > 0) {
    out.push(
      `<text x="${M.left + 8}" y="${M.top + plotH - 8}" font-size="11" fill="#c0392b">not detected in some runs at ${missing.join(', ')} members (left out)</text>`,
    )
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
