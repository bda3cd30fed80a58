/** What an exercise is, and what its grader gets and gives back. Data and graders live in labs/<n>-<slug>/. */

/** One graded test: what the grader expected, what it saw, and whether they agree. */
export interface LabTest {
  name: string;
  pass: boolean;
  expected: string;
  seen: string;
}

/** A command on one of the VMs, bounded in time; a timeout throws SubmissionHung (the VMs are then restarted). */
export type GuestExec = (
  argv: readonly string[],
  o?: { input?: string; timeoutS?: number; what?: string },
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Where things are inside the guests (the same paths on both VMs). */
export interface GuestPaths {
  /** labctl and labnet, built in the guest from labs/guest/. */
  labctl: string;
  labnet: string;
  /** The submission's folder, its object, and the bpffs folder its maps are pinned in. */
  sub: string;
  object: string;
  pin: string;
  /** A scratch folder for the grader's own files (pid files, inputs), emptied after each check. */
  scratch: string;
}

export interface GradeContext {
  server: GuestExec;
  client: GuestExec;
  serverIp: string;
  clientIp: string;
  /** The server's link NIC (XDP exercises attach here, in driver mode). */
  ifname: string;
  paths: GuestPaths;
  /** A random source for the grader's inputs: every check asks for different numbers and keys. */
  random: () => number;
}

/** The submission failed before any outcome could be checked: it did not load, or did not attach. */
export class SubmissionRejected extends Error {
  constructor(
    readonly stage: 'load' | 'attach' | 'program' | 'kernel',
    message: string,
    readonly log?: string,
  ) {
    super(message);
    this.name = 'SubmissionRejected';
  }
}

/** A step on a VM did not return in time: the submission never returned (or took the VM with it). */
export class SubmissionHung extends Error {
  constructor(
    readonly what: string,
    readonly seconds: number,
  ) {
    super(`${what} did not return within ${seconds} s`);
    this.name = 'SubmissionHung';
  }
}

export interface Exercise {
  n: number;
  slug: string;
  title: string;
  /** The file the student edits (in the starter folder, and what `check` compiles). */
  file: string;
  /** The oldest kernel the exercise can run on, and why. */
  needsKernel?: { version: [number, number]; why: string };
  /**
   * 'xdp': the check loads the object and attaches its XDP program to the server's link NIC in driver mode
   * right after compiling it, in the same round trip (grade() starts with it attached).
   */
  attach?: 'xdp';
  /** Started on the server in that round trip once the program is attached (e.g. a receiver, memcached): shell, $1 = labnet. */
  serverSetup?: (p: GuestPaths, serverIp: string) => string;
  grade(ctx: GradeContext): Promise<LabTest[]>;
}
