#!/bin/sh
# Configure the experiment-link NIC from the kernel command line: kflex.addr=10.77.0.1/24 kflex.mtu=1500
set -eu
addr=$(sed -n 's/.*kflex\.addr=\([^ ]*\).*/\1/p' /proc/cmdline)
mtu=$(sed -n 's/.*kflex\.mtu=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$addr" ] || { echo "no kflex.addr= on the kernel command line; link left down"; exit 0; }
ip link set dev eth1 mtu "${mtu:-1500}"
ip addr replace "$addr" dev eth1
ip link set dev eth1 up
echo "eth1 $addr mtu ${mtu:-1500}"
