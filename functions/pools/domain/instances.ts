import type { Ec2State } from './reconcile';

/** EC2 is ending the instance or has ended it: nothing to start, stop, adopt or hand over. */
export const isGone = (state: Ec2State): boolean => state === 'shutting-down' || state === 'terminated';
