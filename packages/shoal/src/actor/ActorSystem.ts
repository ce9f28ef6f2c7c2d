/**
 * ActorSystem: the system as the actor layer sees it (`actor.system`). The actor layer declares it
 * and never imports the system; the system module widens it to the whole `ClusterSystem` by
 * declaration merging (`interface ActorSystem extends ClusterSystem {}` in ClusterSystem.ts), so
 * `this.system` inside an actor has every member and plugin facade, while the import graph keeps
 * pointing one way: system → actor.
 * @module
 */

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ActorSystem {}
