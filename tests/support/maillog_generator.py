#!/usr/bin/env python3
# A copy of the shared gen_maillog.py (kept verbatim below): the log summary's tests
# generate their logs and ground truth with it.
# ruff: noqa
# mypy: ignore-errors
# fmt: off
"""Deterministic synthetic mail.log generator: Postfix 3.7 + Dovecot 2.3 lines
as rsyslog writes them on Debian 12 (traditional "Mar  1 00:00:01 host prog[pid]: msg").

Line shapes follow real Postfix/Dovecot logs (smtpd connect/disconnect with
command stats, NOQUEUE reject with RBL/helo/relay/unknown-user reasons,
cleanup message-id, qmgr from=/size=/nrcpt= (queue active), smtp/lmtp/virtual
to=/relay=/delay=/delays=/dsn=/status=, bounce notifications, qmgr removed /
expired, pickup, anvil/scache statistics, TLS lines, SASL failures, dovecot
imap-login/imap/pop3/lmtp/auth lines).

Ground truth is computed with pflogsumm 1.1.5 semantics and written as JSON
(--truth FILE, default OUT.truth.json) and summarised on stderr.

Usage: gen_maillog.py --size 100M --days 2 --seed 1 -o mail-100M.log
"""
import argparse
from base64 import b64encode
import bisect
import heapq
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from random import Random

MYHOST = "mx1"
MYFQDN = "mx1.mailhost.example"
MYIP = "198.51.100.25"
TLS_IN = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
          "server-signature RSA-PSS (2048 bits) server-digest SHA256")
TLS_IN12 = "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"
TLS_OUT = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
           "server-signature ECDSA (P-256) server-digest SHA256")

SYL = ("ka ro mi na te lo su vi da pe mar tin sol bra hel ber gen for cas del "
       "vor lin sta wer kon tal mon ric fel dor nex ova pri qua zen lux tor").split()
TLDS = ["com"] * 6 + ["net"] * 2 + ["org"] * 2 + ["de"] * 3 + ["fr", "nl", "it", "co.uk", "io", "ru", "cn", "br", "pl", "info", "biz", "top", "xyz"]
FIRST = ("anna ben carla david eva felix greta hans ida jonas karin lukas maria nils olga paul "
         "quentin rita sven tina uwe vera walter xenia yusuf zoe alex kim lea max mia noah "
         "emma leon lena finn sofia elias hanna luis clara jan sara tom julia".split())
LAST = ("mueller schmidt schneider fischer weber meyer wagner becker schulz hoffmann koch "
        "richter klein wolf neumann schwarz zimmermann braun krueger hofmann hartmann lange "
        "smith jones brown taylor wilson martin dubois rossi garcia novak".split())
BIG_PROVIDERS = [  # (domain, mx host, ip prefix, style)
    ("gmail.com", "gmail-smtp-in.l.google.com", "142.250.27", "google"),
    ("googlemail.com", "gmail-smtp-in.l.google.com", "142.250.27", "google"),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", "52.101.68", "ms"),
    ("hotmail.com", "hotmail-com.olc.protection.outlook.com", "52.101.73", "ms"),
    ("yahoo.com", "mta7.am0.yahoodns.net", "67.195.204", "yahoo"),
    ("gmx.de", "mx00.emig.gmx.net", "212.227.15", "gmx"),
    ("web.de", "mx-ha02.web.de", "212.227.17", "gmx"),
    ("t-online.de", "mx00.t-online.de", "194.25.134", "generic"),
    ("icloud.com", "mx01.mail.icloud.com", "17.57.154", "generic"),
]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def fd(x):
    """Postfix-style delay formatting (delay_logging_resolution_limit=2)."""
    if x >= 10:
        return str(int(x + 0.5))
    if x >= 1:
        v = f"{x:.1f}"
        return v[:-2] if v.endswith(".0") else v
    v = f"{x:.2f}"
    if v == "0.00":
        return "0"
    return v.rstrip("0").rstrip(".") if v.endswith("0") else v


def parse_size(s):
    s = s.strip().upper()
    mult = 1
    for suf, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if s.endswith(suf):
            s, mult = s[:-1], m
    return int(float(s) * mult)


class Zipf:
    """Zipf(s) over 0..n-1 via bisect on cumulative weights."""

    def __init__(self, n, s):
        self.cum = list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))
        self.total = self.cum[-1]

    def pick(self, r):
        return bisect.bisect_left(self.cum, r * self.total)


class Gen:
    def __init__(self, args):
        self.a = args
        self.r = Random(args.seed)
        r = self.r
        self.heap = []
        self.seq = 0
        self.qcount = 0
        self.out_bytes = 0
        self.t0 = datetime(args.year, args.month, args.day)
        self.iso = args.iso
        self._ts_cache_sec = -1
        self._ts_cache = ""
        # --- address universe -------------------------------------------------
        self.local_domains = [self.mkdomain(r) for _ in range(25)]
        self.local_domains[0] = "mailhost.example"
        # local mailboxes (Zipf popularity)
        self.local_users = []
        for i in range(args.mailboxes):
            d = self.local_domains[min(int(r.paretovariate(1.2)) - 1, 24)]
            lp = f"{r.choice(FIRST)}.{r.choice(LAST)}" if r.random() < 0.8 else r.choice(
                ["info", "office", "sales", "support", "billing", "hr", "kontakt", "admin", "jobs", "noreply"])
            if r.random() < 0.3:
                lp += str(r.randint(1, 99))
            self.local_users.append(f"{lp}@{d}")
        self.local_z = Zipf(len(self.local_users), 0.9)
        # remote domains: a few big providers + long tail
        self.remote_domains = [p[0] for p in BIG_PROVIDERS] + [self.mkdomain(r) for _ in range(args.remote_domains)]
        self.provider = {p[0]: p for p in BIG_PROVIDERS}
        self.rdom_z = Zipf(len(self.remote_domains), 1.05)
        self.rlocal_z = Zipf(len(FIRST) * len(LAST), 0.7)
        self.mx_ip = {}
        # bulk / newsletter senders using VERP-like unique envelope senders
        self.bulk = [f"bounce.{self.mkdomain(r)}" for _ in range(300)]
        self.bulk_z = Zipf(len(self.bulk), 1.1)
        # client pool: legit MTAs (Zipf) and spam sources (mostly unique)
        self.legit_clients = []
        for i in range(5000):
            dom = self.remote_domains[self.rdom_z.pick(r.random())]
            if dom in self.provider:
                p = self.provider[dom]
                if p[3] == "google":
                    host = f"mail-{r.choice(['wr1','wm1','ej1','lf1','ed1','pj1'])}-f{r.randint(41,199)}.google.com"
                    ip = f"209.85.{r.randint(128,255)}.{r.randint(1,254)}"
                elif p[3] == "ms":
                    host = f"mail-{r.choice(['db8','am6','vi1','he1','ve1'])}eur0{r.randint(1,5)}olkn20{r.randint(10,99)}.outbound.protection.outlook.com"
                    ip = f"40.92.{r.randint(0,127)}.{r.randint(1,254)}"
                else:
                    host = f"mout.{dom}"
                    ip = f"{p[2]}.{r.randint(1,254)}"
            else:
                host = f"{r.choice(['mail','mx','smtp','mout','out'])}{r.choice(['','1','2','-out'])}.{dom}"
                ip = self.rand_ip(r)
            self.legit_clients.append((host, ip))
        self.legit_z = Zipf(len(self.legit_clients), 1.0)
        # pids
        self.pids = {k: [r.randint(1000, 4000000) for _ in range(n)] for k, n in (
            ("smtpd", 40), ("subsmtpd", 10), ("cleanup", 6), ("smtp", 30), ("lmtp", 10),
            ("virtual", 3), ("bounce", 3), ("pickup", 1), ("qmgr", 1), ("anvil", 1), ("scache", 1),
            ("dlmtp", 10), ("imap", 200), ("pop3", 20), ("trivial", 3))}
        # --- ground truth (pflogsumm 1.1.5 semantics) --------------------------
        self.gt = Counter()
        self.per_day = defaultdict(lambda: [0, 0, 0, 0, 0])
        self.per_hour = [[0, 0, 0, 0, 0] for _ in range(24)]
        self.senders = Counter()
        self.sender_bytes = Counter()
        self.sdoms = Counter()
        self.recips = Counter()
        self.rdoms = Counter()
        self.rej_reasons = Counter()
        self.dfr_reasons = Counter()
        self.bnc_reasons = Counter()
        self.deferred_qids = set()
        self.lines = 0

    # --- helpers --------------------------------------------------------------
    @staticmethod
    def mkdomain(r):
        n = r.choice((2, 2, 3, 3, 4))
        name = "".join(r.choice(SYL) for _ in range(n))
        if r.random() < 0.15:
            name += "-" + r.choice(SYL) + r.choice(SYL)
        return f"{name}.{r.choice(TLDS)}"

    @staticmethod
    def rand_ip(r):
        while True:
            a = r.randint(1, 223)
            if a not in (10, 127, 172, 192, 100, 169):
                return f"{a}.{r.randint(0,255)}.{r.randint(0,255)}.{r.randint(1,254)}"

    def sid(self, n=16):
        k = (n * 3 + 3) // 4
        return b64encode(self.r.getrandbits(8 * k).to_bytes(k, "little")).decode()[:n]

    def new_qid(self, t):
        self.qcount += 1
        inode = (self.qcount * 2654435761) & 0xFFFFFF
        usec = int((t - int(t)) * 1e6) & 0xFFFFF
        return f"{usec:05X}{inode:X}"

    def pid(self, kind):
        r = self.r
        lst = self.pids[kind]
        i = r.randrange(len(lst))
        if r.random() < 0.002:  # process recycled (max_use / idle)
            lst[i] = r.randint(1000, 4000000)
        return lst[i]

    def remote_addr(self):
        r = self.r
        dom = self.remote_domains[self.rdom_z.pick(r.random())]
        k = self.rlocal_z.pick(r.random())
        f, l = FIRST[k % len(FIRST)], LAST[k // len(FIRST)]
        style = k % 5
        lp = (f"{f}.{l}", f"{f}{l}", f"{f[0]}.{l}", f"{f}_{l}{k % 97}", f"{l}.{f}")[style]
        return f"{lp}@{dom}", dom

    def local_addr(self):
        return self.local_users[self.local_z.pick(self.r.random())]

    def mx_for(self, dom):
        p = self.provider.get(dom)
        if p:
            return p[1], f"{p[2]}.{self.r.randint(1,254)}"
        ip = self.mx_ip.get(dom)
        if ip is None:
            ip = self.rand_ip(self.r)
            self.mx_ip[dom] = ip
        return ("mx." + dom if len(dom) % 2 else "mail." + dom), ip

    def msgid(self, t, dom):
        r = self.r
        c = r.random()
        if c < 0.3:
            return f"{int(self.t0.timestamp() + t)}.{r.randint(10000,99999)}.{self.sid(8)}@{dom}"
        if c < 0.6:
            return f"CA+{self.sid(40)}@mail.gmail.com"
        if c < 0.8:
            return f"{r.getrandbits(64):016x}.{r.getrandbits(32):08x}@{dom}"
        return f"{self.sid(10)}-{r.randint(1,9999)}@{dom}"

    # --- scheduling ---------------------------------------------------------------
    def ev(self, t, prog, msg, gt=None):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, prog, msg, gt))

    def ts(self, t):
        sec = int(t)
        if self.iso:
            d = self.t0 + timedelta(seconds=t)
            return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}+01:00"
        if sec != self._ts_cache_sec:
            d = self.t0 + timedelta(seconds=sec)
            self._ts_cache = f"{MONTHS[d.month-1]} {d.day:2d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"
            self._ts_cache_sec = sec
        return self._ts_cache

    def flush_until(self, t_limit, write):
        heap = self.heap
        buf = []
        host = MYHOST
        while heap and heap[0][0] <= t_limit:
            t, _, prog, msg, gt = heapq.heappop(heap)
            line = f"{self.ts(t)} {host} {prog}: {msg}\n"
            buf.append(line)
            self.out_bytes += len(line)
            if gt is not None:
                self.account(t, gt)
        self.lines += len(buf)
        if buf:
            write("".join(buf))

    def account(self, t, gt):
        day = int(t // 86400)
        hour = int(t % 86400 // 3600)
        kind = gt[0]
        G = self.gt
        if kind == "rcv":
            G["received"] += 1
            self.per_day[day][0] += 1
            self.per_hour[hour][0] += 1
        elif kind == "qa":  # first queue activation of a received message
            _, sender, size = gt
            G["bytes_received"] += size
            self.senders[sender] += 1
            self.sender_bytes[sender] += size
            self.sdoms[sender.split("@", 1)[1]] += 1
        elif kind == "sent":
            _, rcpt, size = gt
            G["delivered"] += 1
            G["bytes_delivered"] += size
            self.recips[rcpt] += 1
            self.rdoms[rcpt.split("@", 1)[1]] += 1
            self.per_day[day][1] += 1
            self.per_hour[hour][1] += 1
        elif kind == "dfr":
            _, qid, why = gt
            G["deferrals"] += 1
            self.deferred_qids.add(qid)
            self.dfr_reasons[why] += 1
            self.per_day[day][2] += 1
            self.per_hour[hour][2] += 1
        elif kind == "bnc":
            G["bounced"] += 1
            self.bnc_reasons[gt[1]] += 1
            self.per_day[day][3] += 1
            self.per_hour[hour][3] += 1
        elif kind == "rej":
            G["rejected"] += 1
            self.rej_reasons[gt[1]] += 1
            self.per_day[day][4] += 1
            self.per_hour[hour][4] += 1
        elif kind == "rejwarn":
            G["reject_warnings"] += 1
        elif kind == "ndrq":  # queued NDR/other non-received message (size known, not 'received')
            pass
        elif kind == "expired":
            G["expired"] += 1
        elif kind == "warn":
            G["smtpd_warnings"] += 1

    # --- delivery -----------------------------------------------------------------
    def deliver(self, t, qid, sender, size, rcpts, msgid, received, is_ndr=False):
        """Schedule qmgr activation + per-recipient delivery + retries + removed.
        rcpts: list of (addr, is_local). Returns nothing; schedules everything."""
        r = self.r
        qmgr = f"postfix/qmgr[{self.pids['qmgr'][0]}]"
        attempt = 0
        pending = list(rcpts)
        arrival = t - r.uniform(0.05, 0.6)
        first = True
        bounced_any = False
        t_act = t
        while pending:
            self.ev(t_act, qmgr, f"{qid}: from=<{sender}>, size={size}, nrcpt={len(pending)} (queue active)",
                    ("qa", sender, size) if (first and received) else None)
            first = False
            still = []
            tt = t_act
            t_done = t_act
            for addr, is_local in pending:
                tt += r.uniform(0.001, 0.05)
                st, tt2 = self.deliver_one(tt, qid, arrival, addr, is_local, size, msgid, attempt, sender)
                if st == "deferred":
                    still.append((addr, is_local))
                elif st == "bounced":
                    bounced_any = True
                t_done = max(t_done, tt2)
                if r.random() < 0.3:  # same delivery agent: sequential; else parallel agents
                    tt = tt2
            t_end = t_done + r.uniform(0.001, 0.02)
            if still:
                attempt += 1
                if attempt >= 6 or (attempt >= 3 and r.random() < 0.15):
                    # give up: maximal_queue_lifetime reached (compressed for realism of volume)
                    t_exp = t_end + r.uniform(3600, 5 * 3600)
                    self.ev(t_exp, qmgr, f"{qid}: from=<{sender}>, status=expired, returned to sender", ("expired",))
                    if sender and not is_ndr:
                        self.ndr(t_exp + 0.01, qid, sender)
                    self.ev(t_exp + 0.05, qmgr, f"{qid}: removed")
                    return
                backoff = min(300 * (2 ** (attempt - 1)), 4000) * r.uniform(0.9, 1.6)
                t_act = t_end + backoff
                pending = still
                continue
            if bounced_any and sender and not is_ndr:
                self.ndr(t_end, qid, sender)
                t_end += 0.02
            self.ev(t_end + 0.001, qmgr, f"{qid}: removed")
            return

    def ndr(self, t, qid, sender):
        r = self.r
        nq = self.new_qid(t)
        self.ev(t, f"postfix/cleanup[{self.pid('cleanup')}]", f"{nq}: message-id=<{self.datestr(t)}.{nq}@{MYFQDN}>")
        self.ev(t + 0.001, f"postfix/bounce[{self.pid('bounce')}]", f"{qid}: sender non-delivery notification: {nq}")
        dom = sender.split("@", 1)[1]
        is_local = dom in self.local_set
        self.deliver(t + 0.003, nq, "", r.randint(2400, 9000), [(sender, is_local)], "", received=False, is_ndr=True)

    def datestr(self, t):
        d = self.t0 + timedelta(seconds=int(t))
        return d.strftime("%Y%m%d%H%M%S")

    def deliver_one(self, t, qid, arrival, addr, is_local, size, msgid, attempt, sender):
        """Schedule delivery lines for one recipient, return (status, t_done)."""
        r = self.r
        dom = addr.split("@", 1)[1]
        if is_local:
            c = r.random()
            if c < 0.03:  # virtual(8) mailbox domain
                pid = self.pid("virtual")
                d3 = r.uniform(0.001, 0.05)
                te = t + d3
                dl = te - arrival
                self.ev(te, f"postfix/virtual[{pid}]",
                        f"{qid}: to=<{addr}>, relay=virtual, delay={fd(dl)}, delays={fd(t-arrival)}/0.01/0/{fd(d3)}, "
                        f"dsn=2.0.0, status=sent (delivered to maildir)", ("sent", addr, size))
                return "sent", te
            pid = self.pid("lmtp")
            dpid = self.pid("dlmtp")
            sess = self.sid(22)
            t1 = t + r.uniform(0.001, 0.01)
            self.ev(t1, f"dovecot", f"lmtp({dpid}): Connect from local")
            t2 = t1 + r.uniform(0.005, 0.15)
            dl = t2 + 0.002 - arrival
            delays = f"{fd(t-arrival)}/{fd(r.uniform(0,0.02))}/{fd(t1-t)}/{fd(t2-t1)}"
            orig = f"orig_to=<{self.local_addr()}>, " if r.random() < 0.05 else ""
            relay = f"{MYFQDN}[private/dovecot-lmtp]"
            if c < 0.992:
                if r.random() < 0.25:
                    box = r.choice(("Junk", "Junk", "INBOX/Lists", "Newsletter"))
                    self.ev(t2, "dovecot", f"lmtp({addr})<{dpid}><{sess}>: sieve: msgid=<{msgid}>: fileinto action: stored mail into mailbox '{box}'")
                else:
                    self.ev(t2, "dovecot", f"lmtp({addr})<{dpid}><{sess}>: msgid=<{msgid}>: saved mail to INBOX")
                self.ev(t2 + 0.001, f"postfix/lmtp[{pid}]",
                        f"{qid}: to=<{addr}>, {orig}relay={relay}, delay={fd(dl)}, delays={delays}, dsn=2.0.0, "
                        f"status=sent (250 2.0.0 <{addr}> {sess} Saved)", ("sent", addr, size))
                st = "sent"
            elif c < 0.997 and attempt < 5:
                self.ev(t2, "dovecot", f"lmtp({addr})<{dpid}><{sess}>: Error: msgid=<{msgid}>: save failed to INBOX: Quota exceeded (mailbox for user is full)")
                self.ev(t2 + 0.001, f"postfix/lmtp[{pid}]",
                        f"{qid}: to=<{addr}>, {orig}relay={relay}, delay={fd(dl)}, delays={delays}, dsn=4.2.2, "
                        f"status=deferred (host {relay} said: 452 4.2.2 <{addr}> Quota exceeded (mailbox for user is full) (in reply to end of DATA command))",
                        ("dfr", qid, "452 4.2.2 Quota exceeded"))
                st = "deferred"
            else:
                self.ev(t2, "dovecot", f"lmtp({addr})<{dpid}><{sess}>: Error: msgid=<{msgid}>: save failed to INBOX: Quota exceeded (mailbox for user is full)")
                self.ev(t2 + 0.001, f"postfix/lmtp[{pid}]",
                        f"{qid}: to=<{addr}>, {orig}relay={relay}, delay={fd(dl)}, delays={delays}, dsn=5.2.2, "
                        f"status=bounced (host {relay} said: 552 5.2.2 <{addr}> Quota exceeded (mailbox for user is full) (in reply to end of DATA command))",
                        ("bnc", "552 5.2.2 Quota exceeded"))
                st = "bounced"
            self.ev(t2 + 0.003, "dovecot", f"lmtp({dpid}): Disconnect from local: Client has quit the connection (state=READY)")
            return st, t2 + 0.003
        # ---- remote via smtp ----
        pid = self.pid("smtp")
        mx, ip = self.mx_for(dom)
        p = self.provider.get(dom)
        style = p[3] if p else "generic"
        relay = f"{mx}[{ip}]:25"
        c = r.random()
        # deferral probability higher for retries of already-deferred mail
        p_def = 0.045 if attempt == 0 else 0.35
        p_bnc = 0.02 if attempt == 0 else 0.1
        t1 = t + r.uniform(0.05, 0.6)  # connection setup
        if c < p_def:
            k = r.random()
            if k < 0.35:
                tt = t1 + 30
                self.ev(tt, f"postfix/smtp[{pid}]", f"connect to {mx}[{ip}]:25: Connection timed out")
                dl = tt - arrival
                self.ev(tt + 0.001, f"postfix/smtp[{pid}]",
                        f"{qid}: to=<{addr}>, relay=none, delay={fd(dl)}, delays={fd(t-arrival)}/0.01/30/0, dsn=4.4.1, "
                        f"status=deferred (connect to {mx}[{ip}]:25: Connection timed out)",
                        ("dfr", qid, "connect: Connection timed out"))
                return "deferred", tt
            if k < 0.45:
                tt = t1
                self.ev(tt, f"postfix/smtp[{pid}]", f"connect to {mx}[{ip}]:25: Connection refused")
                self.ev(tt + 0.001, f"postfix/smtp[{pid}]",
                        f"{qid}: to=<{addr}>, relay=none, delay={fd(tt-arrival)}, delays={fd(t-arrival)}/0.01/{fd(t1-t)}/0, dsn=4.4.1, "
                        f"status=deferred (connect to {mx}[{ip}]:25: Connection refused)",
                        ("dfr", qid, "connect: Connection refused"))
                return "deferred", tt
            if k < 0.55:
                tt = t1 + r.uniform(0.5, 5)
                self.ev(tt, f"postfix/smtp[{pid}]",
                        f"{qid}: to=<{addr}>, relay=none, delay={fd(tt-arrival)}, delays={fd(t-arrival)}/0.01/{fd(tt-t)}/0, dsn=4.4.3, "
                        f"status=deferred (Host or domain name not found. Name service error for name={dom} type=MX: Host not found, try again)",
                        ("dfr", qid, "Name service error: try again"))
                return "deferred", tt
            tt = t1 + r.uniform(0.2, 2)
            if style == "google":
                reas = (f"host {mx}[{ip}] said: 421-4.7.28 [{MYIP}      15] Our system has detected an unusual rate of "
                        f"421-4.7.28 unsolicited mail originating from your IP address. To protect our 421-4.7.28 users from spam, "
                        f"mail sent from your IP address has been temporarily 421-4.7.28 rate limited. 421 4.7.28  "
                        f"https://support.google.com/mail/?p=UnsolicitedRateLimitError {self.sid(12)} - gsmtp (in reply to end of DATA command)")
                key, dsn = "421 4.7.28 rate limited", "4.7.28"
            elif k < 0.8:
                reas = (f"host {mx}[{ip}] said: 450 4.2.0 <{addr}>: Recipient address rejected: Greylisted, see "
                        f"http://postgrey.schweikert.ch/help/{dom}.html (in reply to RCPT TO command)")
                key, dsn = "450 4.2.0 Greylisted", "4.2.0"
            else:
                reas = f"host {mx}[{ip}] said: 451 4.7.1 Please try again later (in reply to MAIL FROM command)"
                key, dsn = "451 4.7.1 try again later", "4.7.1"
            self.ev(tt, f"postfix/smtp[{pid}]",
                    f"{qid}: to=<{addr}>, relay={relay}, delay={fd(tt-arrival)}, delays={fd(t-arrival)}/0.01/{fd(t1-t)}/{fd(tt-t1)}, "
                    f"dsn={dsn}, status=deferred ({reas})", ("dfr", qid, key))
            return "deferred", tt
        if c < p_def + p_bnc:
            tt = t1 + r.uniform(0.2, 2)
            k = r.random()
            if k < 0.12:
                self.ev(tt, f"postfix/smtp[{pid}]",
                        f"{qid}: to=<{addr}>, relay=none, delay={fd(tt-arrival)}, delays={fd(t-arrival)}/0.01/{fd(tt-t)}/0, dsn=5.4.4, "
                        f"status=bounced (Host or domain name not found. Name service error for name={dom} type=A: Host not found)",
                        ("bnc", "Host not found"))
                return "bounced", tt
            if style == "google":
                reas = (f"host {mx}[{ip}] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try "
                        f"550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. "
                        f"For more information, go to 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser "
                        f"{self.sid(12)} - gsmtp (in reply to RCPT TO command)")
                key, dsn = "550 5.1.1 NoSuchUser", "5.1.1"
            elif style == "ms":
                reas = (f"host {mx}[{ip}] said: 550 5.5.0 Requested action not taken: mailbox unavailable "
                        f"({self.sid(24)}) (in reply to RCPT TO command)")
                key, dsn = "550 5.5.0 mailbox unavailable", "5.5.0"
            elif k < 0.75:
                reas = (f"host {mx}[{ip}] said: 550 5.1.1 <{addr}>: Recipient address rejected: User unknown in "
                        f"virtual mailbox table (in reply to RCPT TO command)")
                key, dsn = "550 5.1.1 User unknown", "5.1.1"
            elif k < 0.9:
                reas = f"host {mx}[{ip}] said: 552 5.2.2 <{addr}>: Mailbox full (in reply to RCPT TO command)"
                key, dsn = "552 5.2.2 Mailbox full", "5.2.2"
            else:
                reas = (f"host {mx}[{ip}] said: 554 5.7.1 Service unavailable; Client host [{MYIP}] blocked using "
                        f"b.barracudacentral.org; https://www.barracudanetworks.com/reputation/?pr=1&ip={MYIP} (in reply to RCPT TO command)")
                key, dsn = "554 5.7.1 blocked using barracuda", "5.7.1"
            self.ev(tt, f"postfix/smtp[{pid}]",
                    f"{qid}: to=<{addr}>, relay={relay}, delay={fd(tt-arrival)}, delays={fd(t-arrival)}/0.01/{fd(t1-t)}/{fd(tt-t1)}, "
                    f"dsn={dsn}, status=bounced ({reas})", ("bnc", key))
            return "bounced", tt
        # sent
        if r.random() < 0.85:
            self.ev(t1, f"postfix/smtp[{pid}]", f"Trusted TLS connection established to {relay}: {TLS_OUT}")
        tt = t1 + r.uniform(0.1, 3.0) * (1 + size / 2e6)
        if style == "google":
            resp = f"250 2.0.0 OK  {int(self.t0.timestamp()+tt)} {self.sid(40)}.{r.randint(1,999)} - gsmtp"
        elif style == "ms":
            resp = (f"250 2.6.0 <{msgid}> [InternalId={r.randint(10**12, 10**13)}, Hostname=AM0PR0{r.randint(1,9)}MB{r.randint(1000,9999)}.eurprd0{r.randint(1,9)}.prod.outlook.com] "
                    f"{size + 2000} bytes in {r.uniform(0.05,0.9):.3f}, {r.uniform(10,900):.3f} KB/sec Queued mail for delivery")
        elif style == "yahoo":
            resp = "250 ok dirdel"
        elif style == "gmx":
            resp = f"250 Requested mail action okay, completed: id={self.sid(8)}-1{self.sid(6)}-00{self.sid(6)}"
        else:
            resp = f"250 2.0.0 Ok: queued as {self.sid(12)}" if r.random() < 0.6 else f"250 OK id=1r{self.sid(4)}-00{self.sid(4)}-{r.randint(1,9)}X"
        self.ev(tt, f"postfix/smtp[{pid}]",
                f"{qid}: to=<{addr}>, relay={relay}, delay={fd(tt-arrival)}, delays={fd(t-arrival)}/0.01/{fd(t1-t)}/{fd(tt-t1)}, "
                f"dsn=2.0.0, status=sent ({resp})", ("sent", addr, size))
        return "sent", tt

    # --- session types --------------------------------------------------------------
    def msg_size(self):
        r = self.r
        # lognormal-ish: median ~ 12 KB, long tail to tens of MB
        s = int(r.lognormvariate(9.4, 1.3))
        return max(400, min(s, 40_000_000))

    def inbound(self, t):
        r = self.r
        pid = self.pid("smtpd")
        prog = f"postfix/smtpd[{pid}]"
        spam = r.random() < 0.45
        if spam:
            ip = self.rand_ip(r)
            host = "unknown" if r.random() < 0.55 else f"{ip.replace('.', '-')}.{r.choice(['dyn','static','pool','dsl','cust'])}.{self.mkdomain(r)}"
        else:
            host, ip = self.legit_clients[self.legit_z.pick(r.random())]
        client = f"{host}[{ip}]"
        self.ev(t, prog, f"connect from {client}")
        tt = t + r.uniform(0.01, 0.3)
        if spam and host != "unknown" and r.random() < 0.1:
            self.ev(tt, prog, f"warning: hostname {host} does not resolve to address {ip}: Name or service not known", ("warn",))
            host, client = "unknown", f"unknown[{ip}]"
        tls = r.random() < (0.85 if not spam else 0.4)
        if tls:
            tt += r.uniform(0.01, 0.2)
            self.ev(tt, prog, f"Anonymous TLS connection established from {client}: {TLS_IN if r.random()<0.8 else TLS_IN12}")
        c = r.random()
        if spam and c < 0.08:  # scanners / bruteforce
            k = r.random()
            tt += r.uniform(0.05, 3)
            if k < 0.4:
                self.ev(tt, prog, f"warning: {client}: SASL LOGIN authentication failed: UGFzc3dvcmQ6", ("warn",))
                self.ev(tt + 0.01, prog, f"lost connection after AUTH from {client}")
                cmds = "ehlo=1 auth=0/1 commands=1/2"
            elif k < 0.7:
                self.ev(tt, prog, f"lost connection after EHLO from {client}")
                cmds = "ehlo=1 commands=1"
            elif k < 0.85:
                self.ev(tt, prog, f"warning: non-SMTP command from {client}: GET / HTTP/1.1", ("warn",))
                cmds = "unknown=0/1 commands=0/1"
            else:
                self.ev(tt, prog, f"lost connection after CONNECT from {client}")
                cmds = "commands=0"
            self.ev(tt + 0.02, prog, f"disconnect from {client} {cmds}")
            return
        helo = host if host != "unknown" else r.choice([f"[{ip}]", "User", "localhost", f"{self.sid(6).lower()}.{self.mkdomain(r)}", self.mkdomain(r)])
        if spam and c < 0.08 + 0.70:
            # NOQUEUE rejects (1-3 recipients)
            sender, sdom = self.remote_addr() if r.random() < 0.7 else (f"{self.sid(8).lower()}@{self.mkdomain(r)}", None)
            nr = 1 if r.random() < 0.8 else r.randint(2, 3)
            k = r.random()
            tt += r.uniform(0.05, 1.0)
            proto = "ESMTP" if r.random() < 0.9 else "SMTP"
            for i in range(nr):
                to = self.local_addr() if r.random() < 0.85 else self.remote_addr()[0]
                if k < 0.45:
                    rbl = r.choice(["zen.spamhaus.org", "zen.spamhaus.org", "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"])
                    url = {"zen.spamhaus.org": f"https://www.spamhaus.org/query/ip/{ip}",
                           "bl.spamcop.net": f"Blocked - see https://www.spamcop.net/bl.shtml?{ip}",
                           "b.barracudacentral.org": f"https://www.barracudanetworks.com/reputation/?pr=1&ip={ip}"}[rbl]
                    reas = f"554 5.7.1 Service unavailable; Client host [{ip}] blocked using {rbl}; {url}"
                    key = f"RBL {rbl}"
                elif k < 0.58:
                    reas = f"450 4.7.1 <{helo}>: Helo command rejected: Host not found"
                    key = "Helo command rejected: Host not found"
                elif k < 0.66:
                    reas = f"504 5.5.2 <{helo}>: Helo command rejected: need fully-qualified hostname"
                    key = "Helo command rejected: need fully-qualified hostname"
                elif k < 0.76:
                    to = self.remote_addr()[0]
                    reas = f"454 4.7.1 <{to}>: Relay access denied"
                    key = "Relay access denied"
                elif k < 0.88:
                    to = f"{r.choice(FIRST)}{r.randint(1,999)}@{r.choice(self.local_domains)}"
                    reas = f"550 5.1.1 <{to}>: Recipient address rejected: User unknown in virtual mailbox table"
                    key = "Recipient address rejected: User unknown in virtual mailbox table"
                elif k < 0.94:
                    reas = f"450 4.7.25 Client host rejected: cannot find your hostname, [{ip}]"
                    key = "Client host rejected: cannot find your hostname"
                else:
                    reas = f"450 4.1.8 <{sender}>: Sender address rejected: Domain not found"
                    key = "Sender address rejected: Domain not found"
                self.ev(tt, prog, f"NOQUEUE: reject: RCPT from {client}: {reas}; from=<{sender}> to=<{to}> proto={proto} helo=<{helo}>",
                        ("rej", key))
                tt += r.uniform(0.01, 0.3)
            if r.random() < 0.3:
                self.ev(tt, prog, f"lost connection after RCPT from {client}")
                cmds = f"ehlo=1 mail=1 rcpt=0/{nr} commands=2/{nr+2}"
            else:
                cmds = f"ehlo=1 mail=1 rcpt=0/{nr} data=0/1 rset=1 quit=1 commands=4/{nr+5}"
            self.ev(tt + 0.01, prog, f"disconnect from {client} {cmds}")
            return
        # accepted inbound message
        if r.random() < 0.2:
            b = self.bulk[self.bulk_z.pick(r.random())]
            sender = f"bounces+{r.randint(1000000, 99999999)}-{self.sid(4).lower()}={r.choice(self.local_domains)}@{b}"
        else:
            sender = self.remote_addr()[0]
        nr = 1 if r.random() < 0.85 else r.randint(2, 6)
        rcpts = list(dict.fromkeys(self.local_addr() for _ in range(nr)))
        tt += r.uniform(0.05, 0.5)
        qid = self.new_qid(tt)
        self.ev(tt, prog, f"{qid}: client={client}", ("rcv",))
        size = self.msg_size()
        tt += r.uniform(0.05, 0.5) * (1 + size / 1e6)
        mid = self.msgid(tt, sender.split("@", 1)[1])
        self.ev(tt, f"postfix/cleanup[{self.pid('cleanup')}]", f"{qid}: message-id=<{mid}>")
        tt += r.uniform(0.001, 0.05)
        self.deliver(tt, qid, sender, size, [(a, True) for a in rcpts], mid, received=True)
        nrc = len(rcpts)
        self.ev(tt + r.uniform(0.01, 0.2), prog,
                f"disconnect from {client} ehlo=1 {'starttls=1 ' if tls else ''}mail=1 rcpt={nrc} data=1 quit=1 commands={4+nrc+(1 if tls else 0)}")

    def submission(self, t):
        r = self.r
        pid = self.pid("subsmtpd")
        prog = f"postfix/submission/smtpd[{pid}]"
        ip = self.rand_ip(r)
        host = "unknown" if r.random() < 0.3 else f"{ip.replace('.', '-')}.{r.choice(['dyn','cable','fiber'])}.{r.choice(['telekom.de','vodafone.de','isp.example','provider.net'])}"
        client = f"{host}[{ip}]"
        user = self.local_addr()
        self.ev(t, prog, f"connect from {client}")
        tt = t + r.uniform(0.02, 0.2)
        self.ev(tt, prog, f"Anonymous TLS connection established from {client}: {TLS_IN}")
        tt += r.uniform(0.05, 0.5)
        if r.random() < 0.03:
            self.ev(tt, prog, f"warning: {client}: SASL PLAIN authentication failed: (reason unavailable), sasl_username={user}", ("warn",))
            self.ev(tt + 0.3, prog, f"disconnect from {client} ehlo=2 starttls=1 auth=0/1 quit=1 commands=4/5")
            return
        qid = self.new_qid(tt)
        self.ev(tt, prog, f"{qid}: client={client}, sasl_method=PLAIN, sasl_username={user}", ("rcv",))
        nr = 1 if r.random() < 0.7 else r.randint(2, 8)
        rcpts = []
        for _ in range(nr):
            if r.random() < 0.75:
                rcpts.append((self.remote_addr()[0], False))
            else:
                a = self.local_addr()
                rcpts.append((a, True))
        rcpts = list(dict.fromkeys(rcpts))
        size = self.msg_size()
        tt += r.uniform(0.05, 0.5) * (1 + size / 1e6)
        mid = self.msgid(tt, user.split("@", 1)[1])
        self.ev(tt, f"postfix/cleanup[{self.pid('cleanup')}]", f"{qid}: message-id=<{mid}>")
        tt += r.uniform(0.001, 0.05)
        self.deliver(tt, qid, user, size, rcpts, mid, received=True)
        nrc = len(rcpts)
        self.ev(tt + r.uniform(0.01, 0.2), prog,
                f"disconnect from {client} ehlo=2 starttls=1 auth=1 mail=1 rcpt={nrc} data=1 quit=1 commands={7+nrc}")

    def pickup(self, t):
        r = self.r
        qid = self.new_qid(t)
        uid, name = r.choice([(33, "www-data"), (0, "root"), (1001, "backup"), (110, "nagios")])
        self.ev(t, f"postfix/pickup[{self.pids['pickup'][0]}]", f"{qid}: uid={uid} from=<{name}>", ("rcv",))
        size = int(r.uniform(500, 6000))
        tt = t + r.uniform(0.005, 0.05)
        mid = f"{self.datestr(tt)}.{qid}@{MYFQDN}"
        self.ev(tt, f"postfix/cleanup[{self.pid('cleanup')}]", f"{qid}: message-id=<{mid}>")
        sender = f"{name}@{MYFQDN}"
        rc = [(self.local_addr(), True)] if r.random() < 0.6 else [(self.remote_addr()[0], False)]
        self.deliver(tt + 0.01, qid, sender, size, rc, mid, received=True)

    def imap(self, t):
        r = self.r
        user = self.local_addr()
        ip = self.rand_ip(r) if r.random() < 0.7 else f"192.0.2.{r.randint(1,254)}"
        proto = "imap" if r.random() < 0.9 else "pop3"
        sess = self.sid(16)
        if r.random() < 0.06:
            bad = user if r.random() < 0.5 else f"{r.choice(FIRST)}@{r.choice(self.local_domains)}"
            self.ev(t, "dovecot", f"auth: passwd-file({bad},{ip},<{sess}>): unknown user" if bad != user else
                    f"auth: passwd-file({bad},{ip},<{sess}>): Password mismatch")
            self.ev(t + r.uniform(1.5, 3), "dovecot",
                    f"{proto}-login: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<{bad}>, method=PLAIN, rip={ip}, lip={MYIP}, TLS, session=<{sess}>")
            return
        mpid = self.pid("imap" if proto == "imap" else "pop3")
        self.ev(t, "dovecot", f"{proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={MYIP}, mpid={mpid}, TLS, session=<{sess}>")
        dur = r.expovariate(1 / 600) if proto == "imap" else r.uniform(0.5, 5)
        tin, tout = r.randint(50, 5000), r.randint(500, 2_000_000)
        if proto == "imap":
            if r.random() < 0.7:
                msg = (f"imap({user})<{mpid}><{sess}>: Logged out in={tin} out={tout} deleted={r.randint(0,3)} expunged={r.randint(0,3)} "
                       f"trashed={r.randint(0,2)} hdr_count={r.randint(0,50)} hdr_bytes={r.randint(0,90000)} body_count={r.randint(0,10)} body_bytes={r.randint(0,900000)}")
            else:
                msg = (f"imap({user})<{mpid}><{sess}>: Disconnected: Connection closed (IDLE running for {dur:.3f} + waiting input for 0.001 secs, "
                       f"2 B in + 10+10 B out, state=wait-input) in={tin} out={tout} deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0")
        else:
            msg = f"pop3({user})<{mpid}><{sess}>: Disconnected: Logged out top=0/0, retr={r.randint(0,5)}/{tout}, del={r.randint(0,5)}/5, size={tout*2}"
        self.ev(t + dur, "dovecot", msg)

    def periodic(self, t):
        r = self.r
        an = f"postfix/anvil[{self.pids['anvil'][0]}]"
        at = self.ts(t - r.uniform(1, 500))
        ip = self.rand_ip(r)
        self.ev(t, an, f"statistics: max connection rate {r.randint(1,12)}/60s for (smtp:{ip}) at {at}")
        self.ev(t, an, f"statistics: max connection count {r.randint(1,5)} for (smtp:{ip}) at {at}")
        self.ev(t, an, f"statistics: max cache size {r.randint(2,40)} at {at}")
        sc = f"postfix/scache[{self.pids['scache'][0]}]"
        self.ev(t + 0.5, sc, f"statistics: start interval {at}")
        h, m = r.randint(0, 30), r.randint(1, 60)
        self.ev(t + 0.5, sc, f"statistics: domain lookup hits={h} miss={m} success={100*h//(h+m)}%")
        self.ev(t + 0.5, sc, f"statistics: address lookup hits=0 miss={m} success=0%")
        self.ev(t + 0.5, sc, f"statistics: max simultaneous domains=1 addresses={r.randint(1,4)} connection={r.randint(1,4)}")

    # --- main loop -------------------------------------------------------------------
    def run(self, out):
        a = self.a
        r = self.r
        self.local_set = set(self.local_domains)
        target = a.size
        # mean session rate chosen from target size, days and measured bytes/session
        rate = target / (a.days * 86400.0 * a.bytes_per_session)
        t = 0.0
        next_periodic = 600.0
        write = out.write
        import math
        kinds = (self.inbound, self.submission, self.pickup, self.imap)
        cum = list(itertools.accumulate((0.62, 0.09, 0.02, 0.27)))
        sessions = 0
        while self.out_bytes < target:
            hour = (t % 86400) / 3600.0
            # diurnal: low at night, peak ~11:00-15:00
            # (0.8322 = mean of the diurnal factor over 24 h, so the mean rate is `rate`)
            lam = rate * (0.35 + 1.3 * max(0.0, math.sin(math.pi * (hour - 5) / 16)) ** 1.5) / 0.8322
            t += r.expovariate(lam)
            if t >= next_periodic:
                self.periodic(next_periodic)
                next_periodic += 600
            kinds[bisect.bisect_left(cum, r.random() * cum[-1])](t)
            sessions += 1
            if sessions & 255 == 0:
                self.flush_until(t, write)
        # drain events that fall before the last arrival + 1 s; drop the rest (log cut at rotation)
        self.flush_until(t + 1, write)
        self.sessions = sessions
        self.t_end = t

    def truth(self):
        G = self.gt
        d = {
            "semantics": "pflogsumm 1.1.5 Grand Totals",
            "lines": self.lines, "bytes": self.out_bytes, "sessions": self.sessions,
            "received": G["received"], "delivered": G["delivered"], "forwarded": 0,
            "deferred": len(self.deferred_qids), "deferrals": G["deferrals"],
            "bounced": G["bounced"], "rejected": G["rejected"], "reject_warnings": G["reject_warnings"],
            "held": 0, "discarded": 0, "expired_not_counted": G["expired"],
            "bytes_received": G["bytes_received"], "bytes_delivered": G["bytes_delivered"],
            "senders": len(self.senders), "sending_domains": len(self.sdoms),
            "recipients": len(self.recips), "recipient_domains": len(self.rdoms),
            "smtpd_warnings": G["smtpd_warnings"],
            "per_day": {(self.t0 + timedelta(days=k)).strftime("%Y-%m-%d"): v for k, v in sorted(self.per_day.items())},
            "per_hour_total": self.per_hour,
            "top_senders": self.senders.most_common(10),
            "top_senders_by_size": self.sender_bytes.most_common(10),
            "top_recipients": self.recips.most_common(10),
            "top_recipient_domains": self.rdoms.most_common(10),
            "top_sending_domains": self.sdoms.most_common(10),
            "reject_reasons": self.rej_reasons.most_common(),
            "deferral_reasons": self.dfr_reasons.most_common(),
            "bounce_reasons": self.bnc_reasons.most_common(),
        }
        return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100M", help="target output size (e.g. 100M, 1G)")
    ap.add_argument("--days", type=float, default=2.0, help="days the log should span (sets the session rate)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--month", type=int, default=3)
    ap.add_argument("--day", type=int, default=1)
    ap.add_argument("--mailboxes", type=int, default=5000)
    ap.add_argument("--remote-domains", type=int, default=40000)
    ap.add_argument("--bytes-per-session", type=float, default=1190.0,
                    help="calibration constant: average log bytes per SMTP/IMAP session")
    ap.add_argument("--iso", action="store_true", help="RFC3339 high-precision timestamps instead of traditional")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--truth", help="ground-truth JSON path (default OUT.truth.json)")
    a = ap.parse_args()
    a.size = parse_size(a.size)
    g = Gen(a)
    t0 = time.time()
    with open(a.out, "w", buffering=1 << 20) as f:
        g.run(f)
    el = time.time() - t0
    tr = g.truth()
    tr["generator_seconds"] = round(el, 1)
    tr["span_days"] = round(g.t_end / 86400, 2)
    with open(a.truth or a.out + ".truth.json", "w") as f:
        json.dump(tr, f, indent=1)
    w = sys.stderr.write
    w(f"wrote {a.out}: {g.out_bytes} bytes, {g.lines} lines, {g.sessions} sessions, span {tr['span_days']} days, {el:.1f}s\n")
    w("ground truth (pflogsumm semantics):\n")
    for k in ("received", "delivered", "deferred", "deferrals", "bounced", "rejected", "bytes_received",
              "bytes_delivered", "senders", "sending_domains", "recipients", "recipient_domains", "expired_not_counted"):
        w(f"  {k:20s} {tr[k]}\n")


if __name__ == "__main__":
    main()
