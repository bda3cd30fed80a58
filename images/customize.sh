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
# sshd must not regenerate keys at first boot (Debian's ssh unit would otherwise try). sshd-keygen.service
# (first boot only) is ordered before sshd with the default dependencies, so while it is wanted sshd waits
# for the whole of basic.target: the host key is the lab's pinned one, nothing to generate.
rm -f "$root/etc/systemd/system/multi-user.target.wants/regenerate_ssh_host_keys.service" "$root"/etc/systemd/system/*.wants/sshd-keygen.service

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

# --- Boot to SSH in seconds under TCG, where every process the guest starts costs about ten times what it
# does on hardware (measured: 8.5 s of coldplug, 5 s of sshd start, 2 s of generators, of ~25 s to SSH).
# udev's coldplug: the disk, the two NICs (kflex-link.service waits for eth1's device unit) and the serial
# console (serial-getty@ttyS0 binds to its device), not the ~650 virtual devices of a full coldplug.
# Devices that appear later are handled as usual; `udevadm trigger` coldplugs the rest by hand.
mkdir -p "$root/etc/systemd/system/systemd-udev-trigger.service.d"
cat > "$root/etc/systemd/system/systemd-udev-trigger.service.d/kflex-lab.conf" <<'CONF'
[Service]
ExecStart=
ExecStart=-udevadm trigger --type=devices --action=add --subsystem-match=net --subsystem-match=block
ExecStart=-udevadm trigger --type=devices --action=add --subsystem-match=tty --sysname-match=ttyS0
CONF
# Generators for what a VM booted with -kernel from one ext4 disk never has (GPT auto-mounts, hibernation,
# TPM, offline updates, SysV scripts, rc.local, kernel-command-line units, SSH over vsock/AF_UNIX). getty
# (the serial console) and fstab stay.
mkdir -p "$root/etc/systemd/system-generators"
for g in systemd-gpt-auto-generator systemd-hibernate-resume-generator systemd-tpm2-generator \
         systemd-system-update-generator systemd-sysv-generator systemd-rc-local-generator \
         systemd-ssh-generator systemd-run-generator systemd-debug-generator; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/$g"
done
# sshd: no `sshd -t` before each start (the lab writes the configuration; a second sshd run under TCG is
# seconds), started by the first connection as before. The socket listens from the start of the boot, not
# after sysinit.target: a connection made early waits in its backlog and starts sshd the moment the
# system is up, instead of being refused and retried a second later.
mkdir -p "$root/etc/systemd/system/ssh.service.d" "$root/etc/systemd/system/ssh.socket.d"
cat > "$root/etc/systemd/system/ssh.service.d/kflex-lab.conf" <<'CONF'
[Unit]
# sshd needs the root and /tmp file systems and the journal, not the rest of sysinit.target (udev's
# coldplug, tmpfiles, sysctl...): it starts while those finish. The lab waits for the link itself.
DefaultDependencies=no
Wants=local-fs.target
After=local-fs.target systemd-journald.socket
Before=shutdown.target
Conflicts=shutdown.target
[Service]
ExecStartPre=
CONF
cat > "$root/etc/systemd/system/ssh.socket.d/kflex-lab.conf" <<'CONF'
[Unit]
DefaultDependencies=no
Before=sockets.target shutdown.target
Conflicts=shutdown.target
CONF
# What the boot starts beside sshd and is not on its way (no pam_systemd here: SSH logins do not wait for
# logind) yields the one emulated CPU to sshd while both start; they keep Nice=10, which nothing the lab
# runs or measures depends on (the servers and clients are started over SSH).
for unit in dbus.service systemd-logind.service systemd-user-sessions.service serial-getty@.service; do
  mkdir -p "$root/etc/systemd/system/$unit.d"
  printf '[Service]\nNice=10\n' > "$root/etc/systemd/system/$unit.d/kflex-lab-boot.conf"
done
# Each SSH login would run /etc/update-motd.d (run-parts, sh, uname) for a message no lab command reads;
# the static /etc/motd stays.
sed -i 's|^\(session[[:space:]]\+optional[[:space:]]\+pam_motd.so[[:space:]]\+motd=/run/motd.dynamic\)|# kflex-lab: \1|' "$root/etc/pam.d/sshd"
# The journal in memory: each VM boots a fresh overlay, so a journal on disk is never read again, and
# flushing it at boot is disk work under emulation.
mkdir -p "$root/etc/systemd/journald.conf.d"
cat > "$root/etc/systemd/journald.conf.d/kflex-lab.conf" <<'CONF'
[Journal]
Storage=volatile
CONF
# Early-boot units with nothing to do in a lab guest: no kernel modules (the kernel is booted with -kernel
# and its modules are not in the image), no udev credentials, no /etc/fstab to remount from, no journal on
# disk to flush to. Each would still be a process to start under emulation.
for unit in systemd-modules-load.service systemd-udev-load-credentials.service systemd-remount-fs.service \
            systemd-journal-flush.service; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done

# Root has no password: the serial console is for reading, ssh with the lab key is the way in.
chroot "$root" passwd -l root >/dev/null 2>&1 || true
echo kflex-guest > "$root/etc/hostname"
# First-boot work (ldconfig, catalog and hwdb updates) is done here, not at every fresh overlay's boot.
touch "$root/etc/.updated" "$root/var/.updated"
