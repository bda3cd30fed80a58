/** Facts about the guest that the image, the VMs and the experiments must agree on. */

/** Where the image holds ffkx, ffkx-bench, ffkx-test and the BPF objects. */
export const KFLEX_GUEST_DIR = '/opt/kflex';
/** The experiment-link NIC inside each guest (net.ifnames=0: eth0 is management). */
export const LINK_IF = 'eth1';
/** ffkx hard-codes this port (TCP and UDP); the baselines use it too so clients are identical. */
export const SERVICE_PORT = 6969;
