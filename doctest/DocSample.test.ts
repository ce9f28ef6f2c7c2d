import { describe, expect, it } from 'vitest'
import { DocTestError, extractSamples, programsOf } from './DocSample.ts'

const md = (...parts: string[]): string => parts.join('\n')

describe('DocSample', () => {
  it('finds ts/js/sh fences and ignores other languages', () => {
    const samples = extractSamples(md('# t', '```ts', 'a()', '```', '```yaml', 'k: v', '```', '```', 'plain', '```', '```bash', 'ls', '```'), 'x.md')
    expect(samples.map((s) => [s.line, s.lang, s.code])).toEqual([
      [2, 'ts', 'a()'],
      [11, 'sh', 'ls'],
    ])
  })

  it('reads a directive and builds the program with setup, replacements and teardown, mapping lines back', () => {
    const samples = extractSamples(
      md(
        '<!-- doctest',
        'setup:',
        '  const a = 1',
        '  const b = 2',
        'replace: 10.0.0.1 => 127.0.0.1',
        'teardown: done()',
        'bounded: 500',
        'expect: hi',
        '-->',
        '```ts',
        "go('10.0.0.1')",
        '```',
      ),
      'x.md',
    )
    const [p] = programsOf(samples)
    expect(p!.source).toBe(md('const a = 1', 'const b = 2', "go('127.0.0.1')", 'done()'))
    expect(p!.origins).toEqual(['setup of x.md:10', 'setup of x.md:10', 'x.md:11', 'teardown of x.md:10'])
    expect(p!.boundedMs).toBe(500)
    expect(p!.expect).toEqual(['hi'])
  })

  it('joins samples that continue each other into one program', () => {
    const programs = programsOf(extractSamples(md('```ts', 'one()', '```', 'text', '<!-- doctest continues -->', '```ts', 'two()', '```'), 'x.md'))
    expect(programs).toHaveLength(1)
    expect(programs[0]!.source).toBe(md('one()', 'two()'))
    expect(programs[0]!.origins).toEqual(['x.md:2', 'x.md:7'])
  })

  it('refuses directives that would hide a mistake', () => {
    const bad = [
      md('<!-- doctest', 'replace: nowhere => x', '-->', '```ts', 'a()', '```'), // replaced text is not in the sample
      md('<!-- doctest', 'colour: red', '-->', '```ts', 'a()', '```'), // unknown key
      md('<!-- doctest', 'skip:', '-->', '```ts', 'a()', '```'), // skip without a reason
      md('<!-- doctest', 'expect: x', '-->', 'prose', '', '', '```ts', 'a()', '```'), // not right before a fence
      md('<!-- doctest', 'expect: x'), // not closed
      md('<!-- doctest continues -->', '```ts', 'a()', '```'), // nothing to continue
    ]
    for (const text of bad) expect(() => programsOf(extractSamples(text, 'x.md')), text).toThrow(DocTestError)
  })
})
