/** Facts about the guest that the image, the VMs and the experiments must agree on. */

/** Where the image holds ffkx, ffkx-bench, ffkx-test and the BPF objects. */
export const KFLEX_GUEST_DIR = '/opt/kflex';
/** The experiment-link NIC inside each guest (net.ifnames=0: eth0 is management). */
export const LINK_IF = 'eth1';
/** ffkx hard-codes this port (TCP and UDP); the baselines use it too so clients are identical. */
export const SERVICE_PORT = 6969;
/** Where the image holds BMC (bmc and bmc_kern.o, built by the bmc stage). */
export const BMC_GUEST_DIR = '/opt/bmc';
/** Where the image holds the arena benchmark (kflex-arena-bench and its BPF objects, built by the arena stage). */
export const ARENA_GUEST_DIR = '/opt/kflex-lab-arena';
/** BMC's XDP and tc programs match memcached's port 11211 (hard-coded in bmc_kern.c). */
export const BMC_PORT = 11211;
