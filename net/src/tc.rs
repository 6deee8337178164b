//! Bandwidth caps with tc over rtnetlink.
//!
//! A link's *egress* (what it sends; for the host-side end of a zone's veth, the traffic towards
//! the zone) is capped by a tbf root qdisc. Its *ingress* (what it receives; traffic from the
//! zone) cannot be policed on this kernel (no act_police), so an ingress qdisc with a u32
//! match-all filter redirects every packet (act_mirred) to an ifb device whose tbf root qdisc
//! does the shaping. The ifb is the caller's to name and to delete; qdiscs and filters go
//! with their link.

use crate::netlink::{attrs, Msg, Netlink, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use crate::{NetError, Result};

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_GETQDISC: u16 = 38;
const RTM_NEWTFILTER: u16 = 44;

const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TC_H_ROOT: u32 = 0xFFFF_FFFF;
const TC_H_INGRESS: u32 = 0xFFFF_FFF1;
const INGRESS_HANDLE: u32 = 0xFFFF_0000;
const ROOT_HANDLE: u32 = 0x0001_0000;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;

const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
const TC_U32_TERMINAL: u8 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_MIRRED_PARMS: u16 = 2;
const TC_ACT_STOLEN: i32 = 4;
const TCA_EGRESS_REDIR: i32 = 1;
const ETH_P_ALL: u16 = 0x0003;

/// How much a tbf may queue: 100 ms at the rate (plus the burst).
const LATENCY_MS: u64 = 100;

fn tcmsg(ifindex: u32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = libc::AF_UNSPEC as u8;
    h[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    h[8..12].copy_from_slice(&handle.to_ne_bytes());
    h[12..16].copy_from_slice(&parent.to_ne_bytes());
    h[16..20].copy_from_slice(&info.to_ne_bytes());
    h
}

/// The bucket size for `bytes_per_s`: 10 ms worth, at least 32 KiB, at most 4 MiB.
pub fn burst_for(bytes_per_s: u64) -> u32 {
    (bytes_per_s / 100).clamp(32 * 1024, 4 * 1024 * 1024) as u32
}

/// `struct tc_tbf_qopt` for a rate in bytes/s (link-layer aware, so no rate table is needed).
fn tbf_qopt(bytes_per_s: u64, burst: u32) -> [u8; 36] {
    let mut q = [0u8; 36];
    // struct tc_ratespec { cell_log u8, linklayer u8, overhead u16, cell_align i16, mpu u16,
    // rate u32 }, then peakrate (all zero: none), limit, buffer, mtu.
    q[1] = TC_LINKLAYER_ETHERNET;
    let rate32 = u32::try_from(bytes_per_s).unwrap_or(u32::MAX);
    q[8..12].copy_from_slice(&rate32.to_ne_bytes());
    let limit = bytes_per_s.saturating_mul(LATENCY_MS) / 1000 + u64::from(burst);
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    q[24..28].copy_from_slice(&limit.to_ne_bytes());
    // The buffer in psched ticks (64 ns); TCA_TBF_BURST below makes the kernel recompute it.
    let ns = u64::from(burst).saturating_mul(1_000_000_000) / bytes_per_s.max(1);
    q[28..32].copy_from_slice(&u32::try_from(ns >> 6).unwrap_or(u32::MAX).to_ne_bytes());
    q
}

/// `struct tc_u32_sel` with one all-zero key: every packet matches.
fn u32_match_all() -> [u8; 32] {
    let mut s = [0u8; 32];
    s[0] = TC_U32_TERMINAL;
    s[2] = 1; // nkeys
    s
}

/// `struct tc_mirred`: redirect to `ifindex` on its egress, the packet is then stolen.
fn mirred_redirect(ifindex: u32) -> [u8; 28] {
    let mut m = [0u8; 28];
    m[8..12].copy_from_slice(&TC_ACT_STOLEN.to_ne_bytes());
    m[20..24].copy_from_slice(&TCA_EGRESS_REDIR.to_ne_bytes());
    m[24..28].copy_from_slice(&ifindex.to_ne_bytes());
    m
}

/// One qdisc as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    pub ifindex: u32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
}

impl Netlink {
    /// Cap what `link` sends at `bps` bits/s with a tbf root qdisc (replacing any root qdisc).
    pub fn set_egress_cap(&mut self, link: &str, bps: u64) -> Result<()> {
        let l = self.require(link)?;
        let rate = bps / 8;
        let burst = burst_for(rate);
        self.del_qdisc(l.index, TC_H_ROOT, 0)?;
        let mut m = Msg::new(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.header(&tcmsg(l.index, ROOT_HANDLE, TC_H_ROOT, 0))
            .attr_str(TCA_KIND, "tbf");
        let o = m.begin_nest(TCA_OPTIONS);
        m.attr(TCA_TBF_PARMS, &tbf_qopt(rate, burst));
        if rate > u64::from(u32::MAX) {
            m.attr(TCA_TBF_RATE64, &rate.to_ne_bytes());
        }
        m.attr_u32(TCA_TBF_BURST, burst);
        m.end_nest(o);
        let target = format!("tbf {bps} bit/s on {link}");
        self.request("add qdisc", &target, &mut m).map(drop)
    }

    /// Cap what `link` receives at `bps` bits/s: its packets are redirected to the ifb device
    /// `ifb` (created here, up) and shaped there. Undo with [`Netlink::clear_caps`] and
    /// deleting `ifb`.
    pub fn set_ingress_cap(&mut self, link: &str, ifb: &str, bps: u64) -> Result<()> {
        let l = self.require(link)?;
        if self.link(ifb)?.is_none() {
            self.create_kind(ifb, "ifb")?;
        }
        self.set_up(ifb, true)?;
        self.set_egress_cap(ifb, bps)?;
        let ifb_index = self.require(ifb)?.index;
        self.del_qdisc(l.index, TC_H_INGRESS, INGRESS_HANDLE)?;
        let mut m = Msg::new(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.header(&tcmsg(l.index, INGRESS_HANDLE, TC_H_INGRESS, 0))
            .attr_str(TCA_KIND, "ingress");
        self.request("add ingress qdisc", link, &mut m)?;

        let info = (1u32 << 16) | u32::from(ETH_P_ALL.to_be());
        let mut m = Msg::new(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.header(&tcmsg(l.index, 0, INGRESS_HANDLE, info))
            .attr_str(TCA_KIND, "u32");
        let o = m.begin_nest(TCA_OPTIONS);
        m.attr(TCA_U32_SEL, &u32_match_all());
        let acts = m.begin_nest(TCA_U32_ACT);
        let first = m.begin_nest(1);
        m.attr_str(TCA_ACT_KIND, "mirred");
        let ao = m.begin_nest(TCA_ACT_OPTIONS);
        m.attr(TCA_MIRRED_PARMS, &mirred_redirect(ifb_index));
        m.end_nest(ao);
        m.end_nest(first);
        m.end_nest(acts);
        m.end_nest(o);
        let target = format!("{link} -> {ifb}");
        self.request("add redirect filter", &target, &mut m)
            .map(drop)
    }

    /// Remove the root and ingress qdiscs of `link` (a missing one is not an error).
    pub fn clear_caps(&mut self, link: &str) -> Result<()> {
        let l = self.require(link)?;
        self.del_qdisc(l.index, TC_H_ROOT, 0)?;
        self.del_qdisc(l.index, TC_H_INGRESS, INGRESS_HANDLE)
    }

    fn del_qdisc(&mut self, ifindex: u32, parent: u32, handle: u32) -> Result<()> {
        let mut m = Msg::new(RTM_DELQDISC, NLM_F_ACK);
        m.header(&tcmsg(ifindex, handle, parent, 0));
        match self.request("delete qdisc", &ifindex.to_string(), &mut m) {
            Ok(_) => Ok(()),
            // Nothing to delete: ENOENT, or EINVAL for the default root qdisc.
            Err(NetError::Kernel {
                errno: nix::Error::ENOENT | nix::Error::EINVAL,
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The qdiscs of every link.
    pub fn qdiscs(&mut self) -> Result<Vec<Qdisc>> {
        let mut m = Msg::new(RTM_GETQDISC, NLM_F_DUMP);
        m.header(&tcmsg(0, 0, 0, 0));
        let mut out = Vec::new();
        for r in self.request("list qdiscs", "*", &mut m)? {
            let Some(h) = r.payload.get(..20) else {
                continue;
            };
            let word = |i: usize| u32::from_ne_bytes(h[i..i + 4].try_into().expect("4 bytes"));
            let kind = attrs(&r.payload[20..])
                .into_iter()
                .find(|a| a.ty == TCA_KIND)
                .and_then(|a| a.str().map(str::to_string))
                .unwrap_or_default();
            out.push(Qdisc {
                ifindex: word(4),
                handle: word(8),
                parent: word(12),
                kind,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tbf_parameters() {
        // 10 Mbit/s: 1.25 MB/s, a 32 KiB bucket, 100 ms of queue.
        let q = tbf_qopt(1_250_000, burst_for(1_250_000));
        assert_eq!(q[1], TC_LINKLAYER_ETHERNET);
        assert_eq!(u32::from_ne_bytes(q[8..12].try_into().unwrap()), 1_250_000);
        assert_eq!(
            u32::from_ne_bytes(q[24..28].try_into().unwrap()),
            125_000 + 32 * 1024
        );
        assert_eq!(burst_for(1_000_000_000), 4 * 1024 * 1024);
        assert_eq!(burst_for(12_500_000), 125_000);
    }

    #[test]
    fn redirect_and_match_all() {
        let m = mirred_redirect(7);
        assert_eq!(i32::from_ne_bytes(m[8..12].try_into().unwrap()), 4);
        assert_eq!(u32::from_ne_bytes(m[24..28].try_into().unwrap()), 7);
        let s = u32_match_all();
        assert_eq!((s[0], s[2], s.len()), (1, 1, 32));
    }
}
