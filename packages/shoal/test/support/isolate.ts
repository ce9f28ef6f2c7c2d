/**
 * Vitest setup, run before each test file: a cluster secret of its own. Test files run in
 * parallel processes and bind port 0; a port freed by one file's node is soon reused by another's,
 * and without distinct secrets the other file's cluster would gossip with the newcomer (a
 * restarted node at a known address is welcome to rejoin). Tests that set a secret keep theirs.
 */
import { randomBytes } from 'node:crypto'

process.env.SHOAL_SECRET = randomBytes(32).toString('hex')
