/**
 * A sweep's worker thread: runs the cluster simulation for each seed it is sent and posts the
 * report back (Sweep.ts).
 * @module
 */
import { parentPort } from 'node:worker_threads'
import { type ClusterSimOptions, runClusterSim } from './ClusterSimulator.ts'

parentPort?.on('message', (options: ClusterSimOptions) => {
  const { trace: _trace, ...report } = runClusterSim({ ...options, trace: false })
  parentPort!.postMessage(report)
})
