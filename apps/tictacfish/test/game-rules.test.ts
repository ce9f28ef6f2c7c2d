/**
 * The rules of the game (seed-system.md §5.4) as pure functions: winning lines, the order results
 * are evaluated in, draws, turns, every refusal of checkMove, player ids compared without regard to
 * case, and the client's cosmetic character index. A property test plays random legal games.
 */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { applyMove, characterFor, checkMove, moveFor, newGame, opponentOf, outcome, playerKey, playerOf, resultOf, samePlayer } from '../src/game/GameRules.ts'
import type { GameMove, GameState, Player } from '../src/protocol/Messages.ts'

const SESSION = '6b9f1f0e-3c1a-4d2b-9e8f-0a1b2c3d4e5f'
const ann: Player = { playerId: '1c0a8e9e-5b6f-4f1e-8d3a-2b4c6d8e0f11', name: 'Ann', team: 'fish' }
const bob: Player = { playerId: '2d1b9f0f-6c7a-4a2f-9e4b-3c5d7e9f1a22', name: 'Bob', team: 'rodents' }
const eve: Player = { playerId: '3e2c0a1a-7d8b-4b3a-8f5c-4d6e8fa02b33', name: 'Eve', team: 'fish' }

const LINES = [
  [0, 1, 2],
  [3, 4, 5],
  [6, 7, 8],
  [0, 3, 6],
  [1, 4, 7],
  [2, 5, 8],
  [0, 4, 8],
  [2, 4, 6],
] as const

const isLine = (squares: readonly number[]): boolean => LINES.some((l) => l.every((s) => squares.includes(s)))

/** Plays `positions` in turn from `state`, checking each move is allowed; returns every state along the way. */
function playAll(state: GameState, positions: readonly number[]): GameState[] {
  const states = [state]
  for (const position of positions) {
    const current = states.at(-1)!
    const mover = playerOf(current, current.currentPlayerId)!
    const move = moveFor(current, mover, position)
    expect(checkMove(current, move)).toBeUndefined()
    states.push(applyMove(current, move))
  }
  return states
}

/** Moves for `winner` taking `line`, its opponent playing elsewhere without a line; the winner's last move completes it. */
function winningSequence(line: readonly number[], winnerMovesFirst: boolean): number[] {
  const others = [0, 1, 2, 3, 4, 5, 6, 7, 8].filter((s) => !line.includes(s))
  const need = winnerMovesFirst ? 2 : 3
  // The loser's squares: the first `need` of the others that do not make a line themselves.
  let loser: number[] = []
  for (let i = 0; i < others.length && loser.length < need; i++) {
    const candidate = [...loser, others[i]!]
    if (!isLine(candidate)) loser = candidate
  }
  expect(loser).toHaveLength(need)
  const seq: number[] = []
  for (let i = 0; i < 3; i++) {
    if (!winnerMovesFirst) seq.push(loser[i]!)
    seq.push(line[i]!)
    if (winnerMovesFirst && i < 2) seq.push(loser[i]!)
  }
  return seq
}

const game = (first: Player = ann): GameState => newGame(SESSION, ann, bob, first)
const stateWith = (moves: [Player, number][], current: Player = ann): GameState => ({
  ...game(current),
  moves: moves.map(([p, position], i) => ({ playerId: p.playerId, position, team: p.team, teamCharacterId: i % 3 })),
})

describe('newGame', () => {
  it('starts with no moves, no result and the chosen player to play', () => {
    const g = newGame(SESSION, ann, bob, bob)
    expect(g).toEqual({ sessionId: SESSION, playerOne: ann, playerTwo: bob, currentPlayerId: bob.playerId, moves: [] })
    expect(g.result).toBeUndefined()
    expect(resultOf(g)).toBeUndefined()
    expect(outcome(g)).toBeUndefined()
  })
})

describe('winning lines', () => {
  for (const [who, first] of [
    ['player one', ann],
    ['player two', bob],
  ] as const) {
    for (const line of LINES) {
      for (const winnerMovesFirst of [true, false]) {
        it(`${who} wins with ${line.join('-')} (${winnerMovesFirst ? 'moving first' : 'moving second'})`, () => {
          const starter = winnerMovesFirst ? first : first === ann ? bob : ann
          const states = playAll(game(starter), winningSequence(line, winnerMovesFirst))
          const last = states.at(-1)!
          // No result before the winner's last move.
          for (const s of states.slice(0, -1)) expect(s.result).toBeUndefined()
          expect(last.result).toEqual({ result: { player: first } })
          expect(outcome(last)).toBe(first.playerId)
          expect(resultOf(last)).toEqual(last.result)
          expect(last.moves.at(-1)!.playerId).toBe(first.playerId)
        })
      }
    }
  }

  it('recognises exactly the 8 lines and no other three squares', () => {
    let lines = 0
    for (let a = 0; a < 9; a++)
      for (let b = a + 1; b < 9; b++)
        for (let c = b + 1; c < 9; c++) {
          const s = stateWith([
            [ann, a],
            [ann, b],
            [ann, c],
          ])
          const won = resultOf(s) !== undefined
          expect(won).toBe(isLine([a, b, c]))
          if (won) lines++
        }
    expect(lines).toBe(8)
  })

  it('a line of mixed owners is no win', () => {
    const s = stateWith([
      [ann, 0],
      [bob, 1],
      [ann, 2],
    ])
    expect(resultOf(s)).toBeUndefined()
  })
})

describe('result evaluation order', () => {
  it('player one is checked before player two (both holding a line)', () => {
    const both = stateWith([
      [bob, 3],
      [ann, 0],
      [bob, 4],
      [ann, 1],
      [bob, 5],
      [ann, 2],
    ])
    expect(resultOf(both)).toEqual({ result: { player: ann } })
    // And the same if the lines are the other way round.
    const swapped = stateWith([
      [ann, 6],
      [bob, 0],
      [ann, 7],
      [bob, 1],
      [ann, 8],
      [bob, 2],
    ])
    expect(resultOf(swapped)).toEqual({ result: { player: ann } })
  })

  it('a ninth move that completes a line is a win, not a draw', () => {
    // X O X / O X O / O X X: the ninth move (8) makes 0-4-8 for Ann.
    const states = playAll(game(ann), [0, 1, 2, 3, 4, 5, 7, 6, 8])
    const last = states.at(-1)!
    expect(last.moves).toHaveLength(9)
    expect(last.result).toEqual({ result: { player: ann } })
  })

  it('nine moves without a line are a draw', () => {
    // X O X / X O O / O X X
    const states = playAll(game(ann), [0, 1, 2, 4, 3, 5, 7, 6, 8])
    for (const s of states.slice(0, -1)) expect(s.result).toBeUndefined()
    const last = states.at(-1)!
    expect(last.moves).toHaveLength(9)
    expect(last.result).toEqual({ result: {} })
    expect(outcome(last)).toBe('draw')
  })

  it('fewer than nine moves without a line: the game goes on', () => {
    const states = playAll(game(bob), [0, 1, 2, 4, 3, 5, 7, 6])
    expect(states.at(-1)!.result).toBeUndefined()
    expect(outcome(states.at(-1)!)).toBeUndefined()
  })
})

describe('turns', () => {
  it('after an accepted move the other player is to play; the move is appended', () => {
    const g0 = game(ann)
    const m = moveFor(g0, ann, 4)
    const g1 = applyMove(g0, m)
    expect(g1.currentPlayerId).toBe(bob.playerId)
    expect(g1.moves).toEqual([m])
    const g2 = applyMove(g1, moveFor(g1, bob, 0))
    expect(g2.currentPlayerId).toBe(ann.playerId)
    expect(g2.moves.map((x) => x.position)).toEqual([4, 0])
  })

  it('applyMove does not change the state it was given', () => {
    const g0 = game(ann)
    const copy = structuredClone(g0)
    applyMove(g0, moveFor(g0, ann, 4))
    expect(g0).toEqual(copy)
  })
})

describe('checkMove refusals', () => {
  const g0 = game(ann)

  it('accepts the current player on a free square', () => {
    expect(checkMove(g0, moveFor(g0, ann, 0))).toBeUndefined()
  })

  it('GAME_OVER once there is a result (before anything else is checked)', () => {
    const won = playAll(g0, [0, 3, 1, 4, 2]).at(-1)!
    expect(won.result).toBeDefined()
    expect(checkMove(won, moveFor(won, bob, 5))).toBe('GAME_OVER')
    expect(checkMove(won, moveFor(won, ann, 0))).toBe('GAME_OVER')
    expect(checkMove(won, moveFor(won, eve, 8))).toBe('GAME_OVER')
    const drawn = playAll(g0, [0, 1, 2, 4, 3, 5, 7, 6, 8]).at(-1)!
    expect(checkMove(drawn, moveFor(drawn, bob, 0))).toBe('GAME_OVER')
  })

  it('NOT_A_PLAYER for a stranger', () => {
    expect(checkMove(g0, moveFor(g0, eve, 0))).toBe('NOT_A_PLAYER')
  })

  it('NOT_YOUR_TURN for the other player', () => {
    expect(checkMove(g0, moveFor(g0, bob, 0))).toBe('NOT_YOUR_TURN')
    const g1 = applyMove(g0, moveFor(g0, ann, 0))
    expect(checkMove(g1, moveFor(g1, ann, 1))).toBe('NOT_YOUR_TURN')
  })

  it('WRONG_TEAM when the move claims the other team', () => {
    expect(checkMove(g0, { ...moveFor(g0, ann, 0), team: 'rodents' })).toBe('WRONG_TEAM')
  })

  it('SQUARE_TAKEN for a square either player holds', () => {
    const g2 = playAll(g0, [4, 0]).at(-1)!
    expect(checkMove(g2, moveFor(g2, ann, 4))).toBe('SQUARE_TAKEN')
    expect(checkMove(g2, moveFor(g2, ann, 0))).toBe('SQUARE_TAKEN')
    expect(checkMove(g2, moveFor(g2, ann, 8))).toBeUndefined()
  })

  it('checks in the documented order: turn before team before square', () => {
    const g1 = applyMove(g0, moveFor(g0, ann, 0))
    // Ann, out of turn, wrong team, taken square: NOT_YOUR_TURN.
    expect(checkMove(g1, { playerId: ann.playerId, position: 0, team: 'rodents', teamCharacterId: 0 })).toBe('NOT_YOUR_TURN')
    // Bob in turn, wrong team, taken square: WRONG_TEAM.
    expect(checkMove(g1, { playerId: bob.playerId, position: 0, team: 'fish', teamCharacterId: 0 })).toBe('WRONG_TEAM')
  })

  it('teamCharacterId is cosmetic: any value is accepted', () => {
    for (const teamCharacterId of [0, 1, 2]) expect(checkMove(g0, { ...moveFor(g0, ann, 0), teamCharacterId })).toBeUndefined()
  })
})

describe('player ids without regard to case', () => {
  const upperAnn: Player = { ...ann, playerId: ann.playerId.toUpperCase() }
  const upperBob: Player = { ...bob, playerId: bob.playerId.toUpperCase() }

  it('playerKey and samePlayer', () => {
    expect(playerKey(upperAnn.playerId)).toBe(ann.playerId)
    expect(samePlayer(upperAnn.playerId, ann.playerId)).toBe(true)
    expect(samePlayer(ann.playerId, bob.playerId)).toBe(false)
  })

  it('a game of upper-case ids (as the Swift client sends) accepts lower-case moves and vice versa', () => {
    const g0 = newGame(SESSION, upperAnn, upperBob, upperAnn)
    const lowerMove: GameMove = { playerId: ann.playerId, position: 0, team: 'fish', teamCharacterId: 0 }
    expect(checkMove(g0, lowerMove)).toBeUndefined()
    const g1 = applyMove(g0, lowerMove)
    // Recorded with the id as the game knows it.
    expect(g1.moves[0]!.playerId).toBe(upperAnn.playerId)
    expect(g1.currentPlayerId).toBe(upperBob.playerId)
    expect(checkMove(g1, { ...lowerMove, position: 1 })).toBe('NOT_YOUR_TURN')

    const g2 = newGame(SESSION, ann, bob, ann)
    const upperMove: GameMove = { playerId: upperAnn.playerId, position: 4, team: 'fish', teamCharacterId: 0 }
    expect(checkMove(g2, upperMove)).toBeUndefined()
    expect(applyMove(g2, upperMove).moves[0]!.playerId).toBe(ann.playerId)
    expect(checkMove(g2, { ...upperMove, playerId: upperBob.playerId, team: 'rodents' })).toBe('NOT_YOUR_TURN')
  })

  it('a win is found whatever the spelling of the ids in the moves', () => {
    const g = newGame(SESSION, upperAnn, upperBob, upperAnn)
    const s: GameState = {
      ...g,
      moves: [0, 1, 2].map((position, i) => ({ playerId: i % 2 ? ann.playerId : upperAnn.playerId, position, team: 'fish', teamCharacterId: 0 })),
    }
    expect(resultOf(s)).toEqual({ result: { player: upperAnn } })
  })

  it('playerOf, opponentOf and characterFor ignore case', () => {
    const g = newGame(SESSION, ann, bob, ann)
    expect(playerOf(g, upperAnn.playerId)).toBe(ann)
    expect(playerOf(g, upperBob.playerId)).toBe(bob)
    expect(playerOf(g, eve.playerId)).toBeUndefined()
    expect(opponentOf(g, upperAnn.playerId)).toBe(bob)
    expect(opponentOf(g, bob.playerId.toUpperCase())).toBe(ann)
    const g1 = applyMove(g, moveFor(g, ann, 0))
    expect(characterFor(g1, upperAnn.playerId)).toBe(1)
  })
})

describe('characterFor and moveFor', () => {
  it("counts the player's own moves so far, mod 3", () => {
    const states = playAll(game(ann), [0, 1, 2, 4, 3, 5, 7, 6])
    const expected = [
      [0, 0],
      [1, 0],
      [1, 1],
      [2, 1],
      [2, 2],
      [3 % 3, 2],
      [3 % 3, 3 % 3],
      [4 % 3, 3 % 3],
      [4 % 3, 4 % 3],
    ]
    states.forEach((s, i) => {
      expect([characterFor(s, ann.playerId), characterFor(s, bob.playerId)]).toEqual(expected[i])
    })
  })

  it('moveFor is the move the seed client would send', () => {
    const g = playAll(game(ann), [0, 1, 2, 3]).at(-1)!
    expect(moveFor(g, ann, 8)).toEqual({ playerId: ann.playerId, position: 8, team: 'fish', teamCharacterId: 2 })
    expect(moveFor(g, bob, 8)).toEqual({ playerId: bob.playerId, position: 8, team: 'rodents', teamCharacterId: 2 })
    // The moves the game recorded carry the index their player had then.
    expect(g.moves.map((m) => m.teamCharacterId)).toEqual([0, 0, 1, 1])
  })
})

describe('random legal games (property)', () => {
  it('end with exactly one result within 9 moves and never accept a taken square', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.nat(), { minLength: 9, maxLength: 9 }), fc.nat(), (annFirst, picks, takenPick) => {
        let state = game(annFirst ? ann : bob)
        let moves = 0
        while (!state.result) {
          expect(moves).toBeLessThan(9)
          const mover = playerOf(state, state.currentPlayerId)!
          const taken = state.moves.map((m) => m.position)
          const free = [0, 1, 2, 3, 4, 5, 6, 7, 8].filter((s) => !taken.includes(s))
          // Never a taken square.
          if (taken.length > 0) expect(checkMove(state, moveFor(state, mover, taken[takenPick % taken.length]!))).toBe('SQUARE_TAKEN')
          // Never the player not in turn.
          expect(checkMove(state, moveFor(state, opponentOf(state, mover.playerId), free[0]!))).toBe('NOT_YOUR_TURN')
          const move = moveFor(state, mover, free[picks[moves]! % free.length]!)
          expect(checkMove(state, move)).toBeUndefined()
          state = applyMove(state, move)
          expect(state.currentPlayerId).toBe(opponentOf(state, mover.playerId).playerId)
          moves++
        }
        expect(moves).toBeLessThanOrEqual(9)
        expect(state.moves).toHaveLength(moves)
        expect(new Set(state.moves.map((m) => m.position)).size).toBe(moves)
        const squaresOf = (p: Player) => state.moves.filter((m) => m.playerId === p.playerId).map((m) => m.position)
        const r = state.result.result!
        if ('player' in r) {
          // A win: the winner made the last move and holds a line; the loser holds none.
          const winner = r.player
          const loser = opponentOf(state, winner.playerId)
          expect(state.moves.at(-1)!.playerId).toBe(winner.playerId)
          expect(isLine(squaresOf(winner))).toBe(true)
          expect(isLine(squaresOf(loser))).toBe(false)
          expect(outcome(state)).toBe(winner.playerId)
        } else {
          // A draw: nine moves, nobody holds a line.
          expect(r).toEqual({})
          expect(moves).toBe(9)
          expect(isLine(squaresOf(ann)) || isLine(squaresOf(bob))).toBe(false)
          expect(outcome(state)).toBe('draw')
        }
        // Once over, every move is refused.
        for (let s = 0; s < 9; s++) expect(checkMove(state, moveFor(state, playerOf(state, state.currentPlayerId)!, s))).toBe('GAME_OVER')
      }),
      { numRuns: 500, seed: 20240611 },
    )
  })
})
