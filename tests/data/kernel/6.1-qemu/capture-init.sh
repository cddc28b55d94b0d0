#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
ip link set lo up
sleep 30 | nc -l -p 8080 >/dev/null &
sleep 1
(echo hello; sleep 30) | nc 127.0.0.1 8080 &
arping -I lo -c 30 127.0.0.1 >/dev/null 2>&1 &
udhcpc -i lo -t 30 -T 1 >/dev/null 2>&1 &
ping6 -c 30 ::1 >/dev/null 2>&1 &
sleep 3
for f in meminfo net/tcp net/tcp6 net/udp net/udp6 net/raw net/raw6 net/udplite net/udplite6 net/netlink net/packet net/sockstat vmallocinfo; do
  echo "@@@BEGIN $f"
  if [ $f = vmallocinfo ]; then head -50 /proc/$f; else cat /proc/$f; fi
  echo "@@@END $f"
done
poweroff -f
