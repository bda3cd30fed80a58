#!/bin/sh
# mmdebstrap --customize-hook: configure the guest root filesystem at $1.
# Inputs (environment, set by images/stage.ts): KFLEX_PUBKEY, KFLEX_HOSTKEY (private key file),
# KFLEX_LINK_SETUP (path of link-setup script to install).
set -eu
root="$1"

# --- SSH: the lab's key only, root by key, no passwords; the host key is the lab's pinned one.
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
cp "$KFLEX_PUBKEY" "$root/root/.ssh/authorized_keys"
chmod 600 "$root/root/.ssh/authorized_keys"
rm -f "$root"/etc/ssh/ssh_host_*
cp "$KFLEX_HOSTKEY" "$root/etc/ssh/ssh_host_ed25519_key"
cp "$KFLEX_HOSTKEY.pub" "$root/etc/ssh/ssh_host_ed25519_key.pub"
chmod 600 "$root/etc/ssh/ssh_host_ed25519_key"
mkdir -p "$root/etc/ssh/sshd_config.d"
cat > "$root/etc/ssh/sshd_config.d/kflex-lab.conf" <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
# sshd must not regenerate keys at first boot (Debian's ssh unit would otherwise try).
rm -f "$root/etc/systemd/system/multi-user.target.wants/regenerate_ssh_host_keys.service"

# --- Network: the management NIC (eth0, QEMU user-mode net) gets DHCP from the kernel (ip= on the
# command line), so no network daemon sits between boot and sshd. The link NIC (eth1) comes from the
# kernel command line (kflex.addr=, kflex.mtu=), set by kflex-link.service.
install -m 0755 "$KFLEX_LINK_SETUP" "$root/usr/local/sbin/kflex-link-setup"
cat > "$root/etc/systemd/system/kflex-link.service" <<'UNIT'
[Unit]
Description=kflex-lab experiment link (eth1) from the kernel command line
After=sys-subsystem-net-devices-eth1.device
Wants=sys-subsystem-net-devices-eth1.device
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kflex-link-setup
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/kflex-link.service "$root/etc/systemd/system/multi-user.target.wants/kflex-link.service"
# sshd by socket activation: listening from sockets.target instead of after network.target.
chroot "$root" systemctl disable ssh.service >/dev/null 2>&1 || true
chroot "$root" systemctl enable ssh.socket >/dev/null 2>&1
cat > "$root/etc/hosts" <<'HOSTS'
127.0.0.1 localhost
10.77.0.1 server
10.77.0.2 client
HOSTS
# No fstab: the kernel mounts /dev/vda rw from the command line; waiting on dev-vda.device costs seconds.
: > "$root/etc/fstab"

# --- Boot fast: nothing the lab does not need. Experiments start their servers themselves.
for unit in memcached.service redis-server.service apt-daily.timer apt-daily-upgrade.timer \
            e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer \
            systemd-networkd-wait-online.service getty@tty1.service systemd-timesyncd.service \
            systemd-networkd.service \
            iperf3.service redis-server@.service systemd-networkd.socket; do
  chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
done
for unit in memcached.service redis-server.service systemd-networkd-wait-online.service getty@tty1.service \
            systemd-networkd.service systemd-networkd.socket modprobe@drm.service modprobe@fuse.service \
            modprobe@configfs.service modprobe@dm_mod.service modprobe@loop.service modprobe@efi_pstore.service \
            apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
# Root has no password: the serial console is for reading, ssh with the lab key is the way in.
chroot "$root" passwd -l root >/dev/null 2>&1 || true
echo kflex-guest > "$root/etc/hostname"
# First-boot work (ldconfig, catalog and hwdb updates) is done here, not at every fresh overlay's boot.
touch "$root/etc/.updated" "$root/var/.updated"
