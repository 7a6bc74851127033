//! Rate-limit arithmetic (SPEC §1.8): five layers, exact rolling windows, a calendar-month
//! counter, check-all-then-charge-all, and the choice of the binding layer for the headers.
//! All state is in memory; the store persists the monthly and daily sends and [`RateLimiter::restore`]
//! reloads them after a restart.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// The layers in table order: ties for the binding layer go to the earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    TokenBurst,
    TokenMonthly,
    ReceiverDaily,
    IpMinute,
    IpHour,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::TokenBurst => "token_burst",
            Layer::TokenMonthly => "token_monthly",
            Layer::ReceiverDaily => "receiver_daily",
            Layer::IpMinute => "ip_minute",
            Layer::IpHour => "ip_hour",
        }
    }

    pub fn is_per_ip(self) -> bool {
        matches!(self, Layer::IpMinute | Layer::IpHour)
    }
}

/// Configured limits; 0 disables a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub token_burst: u64,
    pub token_monthly: u64,
    pub receiver_daily: u64,
    pub ip_minute: u64,
    pub ip_hour: u64,
}

impl Limits {
    /// SPEC §1.8's default: a self-hosted relay is its operator's own, so a cron job or a
    /// `--wait` never runs into a free tier's numbers.
    pub const SELF_HOSTED: Limits = Limits {
        token_burst: 60,
        token_monthly: 0,
        receiver_daily: 10_000,
        ip_minute: 300,
        ip_hour: 3000,
    };

    /// The hosted free tier (`--limits hosted`).
    pub const HOSTED: Limits = Limits {
        token_burst: 60,
        token_monthly: 500,
        receiver_daily: 1000,
        ip_minute: 20,
        ip_hour: 200,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::SELF_HOSTED
    }
}

/// One layer's state as the `X-RateLimit-*` headers describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerStatus {
    pub layer: Layer,
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds when the layer next frees capacity.
    pub reset: i64,
}

impl LayerStatus {
    /// Seconds until capacity frees, at least 1 (for `Retry-After`).
    pub fn retry_after(&self, now_ms: i64) -> u64 {
        ((self.reset * 1000 - now_ms).max(0) as u64)
            .div_ceil(1000)
            .max(1)
    }
}

/// The layer with the smallest remaining/limit fraction; ties in table order.
pub fn binding(statuses: &[LayerStatus]) -> Option<LayerStatus> {
    statuses.iter().copied().min_by(|a, b| {
        // a.remaining/a.limit vs b.remaining/b.limit without floats.
        (a.remaining as u128 * b.limit as u128)
            .cmp(&(b.remaining as u128 * a.limit as u128))
            .then(a.layer.cmp(&b.layer))
    })
}

/// Unix ms → Unix seconds, rounded up (a reset is never reported early).
fn ceil_secs(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

impl Layer {
    /// A rolling layer's window; `None` for the calendar month.
    pub fn window_ms(self) -> Option<i64> {
        match self {
            Layer::TokenBurst | Layer::IpMinute => Some(MINUTE_MS),
            Layer::IpHour => Some(HOUR_MS),
            Layer::ReceiverDaily => Some(DAY_MS),
            Layer::TokenMonthly => None,
        }
    }
}

/// A rolling layer's state from the events inside its window: how many there are (`used`)
/// and the oldest of them, which leaves the window first.
pub fn window_status(
    layer: Layer,
    limit: u64,
    used: u64,
    oldest: Option<i64>,
    now: i64,
    window: i64,
) -> LayerStatus {
    LayerStatus {
        layer,
        limit,
        remaining: limit.saturating_sub(used),
        reset: ceil_secs(oldest.map_or(now, |oldest| oldest + window)),
    }
}

/// The calendar-month layer's state with `used` sends this month.
pub fn monthly_status(limit: u64, used: u64, now: i64) -> LayerStatus {
    LayerStatus {
        layer: Layer::TokenMonthly,
        limit,
        remaining: limit.saturating_sub(used),
        reset: next_month_start(now),
    }
}

/// An exact rolling window: the times of the events inside it.
#[derive(Debug, Default, Clone)]
struct SlidingLog(VecDeque<i64>);

impl SlidingLog {
    fn prune(&mut self, now: i64, window: i64) {
        while self.0.front().is_some_and(|&t| t <= now - window) {
            self.0.pop_front();
        }
    }

    /// Removes the latest event at `at`, if the log holds one.
    fn forget(&mut self, at: i64) {
        if let Some(i) = self.0.iter().rposition(|&t| t == at) {
            self.0.remove(i);
        }
    }

    fn status(&mut self, layer: Layer, limit: u64, now: i64, window: i64) -> LayerStatus {
        self.prune(now, window);
        let used = self.0.len() as u64;
        window_status(layer, limit, used, self.0.front().copied(), now, window)
    }
}

/// `YYYY-MM` of a Unix-ms instant, UTC.
pub fn month_key(now_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("%Y-%m")
        .to_string()
}

/// Unix seconds at the start of the month after `now_ms`, UTC.
fn next_month_start(now_ms: i64) -> i64 {
    use chrono::Datelike;
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |dt| dt.and_utc().timestamp())
}

#[derive(Default)]
struct State {
    ip_minute: HashMap<IpAddr, SlidingLog>,
    ip_hour: HashMap<IpAddr, SlidingLog>,
    token_burst: HashMap<String, SlidingLog>,
    /// token id → (month, count)
    token_monthly: HashMap<String, (String, u64)>,
    receiver_daily: HashMap<i64, SlidingLog>,
}

impl State {
    /// The token and receiver layers' state (their windows pruned), charging nothing: what the
    /// send check decides on and what `GET /v1/token` reports.
    fn send_statuses(
        &mut self,
        l: Limits,
        token_id: &str,
        receiver: i64,
        now: i64,
        month: &str,
    ) -> Vec<LayerStatus> {
        let mut statuses = Vec::with_capacity(5);
        if l.token_burst > 0 {
            let log = self.token_burst.entry(token_id.to_owned()).or_default();
            statuses.push(log.status(Layer::TokenBurst, l.token_burst, now, MINUTE_MS));
        }
        if l.token_monthly > 0 {
            let used = match self.token_monthly.get(token_id) {
                Some((m, count)) if m == month => *count,
                _ => 0,
            };
            statuses.push(monthly_status(l.token_monthly, used, now));
        }
        if l.receiver_daily > 0 {
            let log = self.receiver_daily.entry(receiver).or_default();
            statuses.push(log.status(Layer::ReceiverDaily, l.receiver_daily, now, DAY_MS));
        }
        statuses
    }
}

pub struct RateLimiter {
    limits: Limits,
    state: Mutex<State>,
}

/// A request the limits refuse: the exhausted layer, for the 429's headers and details.
pub type Refusal = LayerStatus;

impl RateLimiter {
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reloads the persistent layers: this month's counts and the last day's receiver sends.
    pub fn restore(
        &self,
        month: &str,
        month_counts: Vec<(String, u64)>,
        receiver_sends: Vec<(i64, i64)>,
    ) {
        let mut s = self.state.lock().expect("limiter poisoned");
        for (token, count) in month_counts {
            s.token_monthly.insert(token, (month.to_owned(), count));
        }
        for (user, at) in receiver_sends {
            s.receiver_daily.entry(user).or_default().0.push_back(at);
        }
    }

    /// Step 1: both per-IP layers, charged together when both have room.
    pub fn check_ip(&self, ip: IpAddr, now: i64) -> Result<Vec<LayerStatus>, Refusal> {
        let l = self.limits;
        let mut s = self.state.lock().expect("limiter poisoned");
        let mut statuses = Vec::with_capacity(2);
        if l.ip_minute > 0 {
            statuses.push(s.ip_minute.entry(ip).or_default().status(
                Layer::IpMinute,
                l.ip_minute,
                now,
                MINUTE_MS,
            ));
        }
        if l.ip_hour > 0 {
            statuses.push(s.ip_hour.entry(ip).or_default().status(
                Layer::IpHour,
                l.ip_hour,
                now,
                HOUR_MS,
            ));
        }
        if let Some(full) = statuses.iter().find(|st| st.remaining == 0) {
            return Err(*full);
        }
        let mut charged = Vec::with_capacity(2);
        if l.ip_minute > 0 {
            let log = s.ip_minute.entry(ip).or_default();
            log.0.push_back(now);
            charged.push(log.status(Layer::IpMinute, l.ip_minute, now, MINUTE_MS));
        }
        if l.ip_hour > 0 {
            let log = s.ip_hour.entry(ip).or_default();
            log.0.push_back(now);
            charged.push(log.status(Layer::IpHour, l.ip_hour, now, HOUR_MS));
        }
        // Read after the charge: a window's first event sets its reset.
        Ok(charged)
    }

    /// Both per-IP layers' state, charging nothing; refused when one is exhausted (an
    /// authenticated read is checked first and charged only if it fails).
    pub fn peek_ip(&self, ip: IpAddr, now: i64) -> Result<Vec<LayerStatus>, Refusal> {
        let l = self.limits;
        let s = self.state.lock().expect("limiter poisoned");
        let mut statuses = Vec::with_capacity(2);
        for (layer, limit, logs, window) in [
            (Layer::IpMinute, l.ip_minute, &s.ip_minute, MINUTE_MS),
            (Layer::IpHour, l.ip_hour, &s.ip_hour, HOUR_MS),
        ] {
            if limit > 0 {
                let mut log = logs.get(&ip).cloned().unwrap_or_default();
                statuses.push(log.status(layer, limit, now, window));
            }
        }
        match statuses.iter().find(|st| st.remaining == 0) {
            Some(full) => Err(*full),
            None => Ok(statuses),
        }
    }

    /// Step 6: token burst, token monthly and receiver daily — all checked, then all charged.
    pub fn check_and_charge_send(
        &self,
        token_id: &str,
        receiver: i64,
        now: i64,
    ) -> Result<Vec<LayerStatus>, Refusal> {
        let l = self.limits;
        let month = month_key(now);
        let mut s = self.state.lock().expect("limiter poisoned");
        let statuses = s.send_statuses(l, token_id, receiver, now, &month);
        if let Some(full) = statuses.iter().find(|st| st.remaining == 0) {
            return Err(*full);
        }
        if l.token_burst > 0 {
            s.token_burst
                .entry(token_id.to_owned())
                .or_default()
                .0
                .push_back(now);
        }
        let entry = s
            .token_monthly
            .entry(token_id.to_owned())
            .or_insert_with(|| (month.clone(), 0));
        if entry.0 != month {
            *entry = (month.clone(), 0);
        }
        entry.1 += 1;
        if l.receiver_daily > 0 {
            s.receiver_daily
                .entry(receiver)
                .or_default()
                .0
                .push_back(now);
        }
        // Read after the charge: a window's first event sets its reset (also when `now` falls
        // on a whole second).
        Ok(s.send_statuses(l, token_id, receiver, now, &month))
    }

    /// Gives back one charge of [`Self::check_and_charge_send`] made at `now` (and only one
    /// that was made: the monthly count keeps no times to check it against): the store's
    /// writer runs an accept again when another piece of its batch failed, and an accept that
    /// ends otherwise than accepted on its last run must leave no charge behind.
    pub fn refund_send(&self, token_id: &str, receiver: i64, now: i64) {
        let month = month_key(now);
        let mut s = self.state.lock().expect("limiter poisoned");
        if let Some(log) = s.token_burst.get_mut(token_id) {
            log.forget(now);
        }
        if let Some((m, count)) = s.token_monthly.get_mut(token_id)
            && *m == month
        {
            *count = count.saturating_sub(1);
        }
        if let Some(log) = s.receiver_daily.get_mut(&receiver) {
            log.forget(now);
        }
    }

    /// Whether token burst, token monthly and receiver daily all have room, charging nothing.
    pub fn check_send(&self, token_id: &str, receiver: i64, now: i64) -> Result<(), Refusal> {
        let month = month_key(now);
        let mut s = self.state.lock().expect("limiter poisoned");
        let statuses = s.send_statuses(self.limits, token_id, receiver, now, &month);
        match statuses.into_iter().find(|st| st.remaining == 0) {
            Some(full) => Err(full),
            None => Ok(()),
        }
    }

    /// Every enabled layer's state for one caller, charging nothing (`GET /v1/token`).
    pub fn peek(&self, ip: IpAddr, token_id: &str, receiver: i64, now: i64) -> Vec<LayerStatus> {
        let l = self.limits;
        let month = month_key(now);
        let mut s = self.state.lock().expect("limiter poisoned");
        let mut statuses = s.send_statuses(l, token_id, receiver, now, &month);
        if l.ip_minute > 0 {
            let mut log = s.ip_minute.get(&ip).cloned().unwrap_or_default();
            statuses.push(log.status(Layer::IpMinute, l.ip_minute, now, MINUTE_MS));
        }
        if l.ip_hour > 0 {
            let mut log = s.ip_hour.get(&ip).cloned().unwrap_or_default();
            statuses.push(log.status(Layer::IpHour, l.ip_hour, now, HOUR_MS));
        }
        statuses
    }

    /// Forgets windows that emptied, so idle IPs and tokens do not accumulate.
    pub fn sweep(&self, now: i64) {
        let mut s = self.state.lock().expect("limiter poisoned");
        s.ip_minute.retain(|_, log| {
            log.prune(now, MINUTE_MS);
            !log.0.is_empty()
        });
        s.ip_hour.retain(|_, log| {
            log.prune(now, HOUR_MS);
            !log.0.is_empty()
        });
        s.token_burst.retain(|_, log| {
            log.prune(now, MINUTE_MS);
            !log.0.is_empty()
        });
        s.receiver_daily.retain(|_, log| {
            log.prune(now, DAY_MS);
            !log.0.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const T0: i64 = 1_795_000_000_000; // Nov 2026

    fn limits(
        token_burst: u64,
        token_monthly: u64,
        receiver_daily: u64,
        ip_minute: u64,
        ip_hour: u64,
    ) -> RateLimiter {
        RateLimiter::new(Limits {
            token_burst,
            token_monthly,
            receiver_daily,
            ip_minute,
            ip_hour,
        })
    }

    #[test]
    fn ip_minute_rolls() {
        let rl = limits(0, 0, 0, 2, 0);
        assert!(rl.check_ip(IP, T0).is_ok());
        assert_eq!(rl.check_ip(IP, T0 + 1_000).unwrap()[0].remaining, 0);
        let refused = rl.check_ip(IP, T0 + 2_000).unwrap_err();
        assert_eq!(refused.layer, Layer::IpMinute);
        assert_eq!(refused.reset, (T0 + MINUTE_MS) / 1000);
        assert_eq!(refused.retry_after(T0 + 2_000), 58);
        assert!(
            rl.check_ip(IP, T0 + MINUTE_MS).is_ok(),
            "the oldest event left the window"
        );
    }

    #[test]
    fn peek_ip_reports_and_refuses_without_charging() {
        let rl = limits(0, 0, 0, 2, 0);
        for _ in 0..5 {
            assert_eq!(rl.peek_ip(IP, T0).unwrap()[0].remaining, 2);
        }
        rl.check_ip(IP, T0).unwrap();
        rl.check_ip(IP, T0 + 1).unwrap();
        let refused = rl.peek_ip(IP, T0 + 2).unwrap_err();
        assert_eq!(refused.layer, Layer::IpMinute);
        assert!(limits(0, 0, 0, 0, 0).peek_ip(IP, T0).unwrap().is_empty());
    }

    #[test]
    fn the_default_is_self_hosted_and_hosted_is_the_free_tier() {
        assert_eq!(Limits::default(), Limits::SELF_HOSTED);
        assert_eq!(Limits::SELF_HOSTED.token_monthly, 0, "off");
        assert_eq!(
            Limits::HOSTED,
            Limits {
                token_burst: 60,
                token_monthly: 500,
                receiver_daily: 1000,
                ip_minute: 20,
                ip_hour: 200
            }
        );
    }

    #[test]
    fn send_layers_charge_all_or_nothing() {
        let rl = limits(5, 5, 2, 0, 0);
        rl.check_and_charge_send("tok_a", 1, T0).unwrap();
        rl.check_and_charge_send("tok_b", 1, T0).unwrap();
        // Receiver is full: tok_a's burst and monthly must not be charged by the refusal.
        let refused = rl.check_and_charge_send("tok_a", 1, T0).unwrap_err();
        assert_eq!(refused.layer, Layer::ReceiverDaily);
        let other = rl.check_and_charge_send("tok_a", 2, T0).unwrap();
        let burst = other.iter().find(|s| s.layer == Layer::TokenBurst).unwrap();
        assert_eq!(burst.remaining, 3, "only two charges landed on tok_a");
    }

    #[test]
    fn a_refund_gives_back_one_charge_of_each_send_layer() {
        let rl = limits(5, 5, 5, 0, 0);
        let remaining = |statuses: Vec<LayerStatus>| -> Vec<u64> {
            statuses.iter().map(|s| s.remaining).collect()
        };
        rl.check_and_charge_send("tok", 1, T0).unwrap();
        rl.check_and_charge_send("tok", 1, T0 + 1).unwrap();
        rl.refund_send("tok", 1, T0 + 1);
        // Each layer lost one of its two charges; another token's and receiver's refund finds
        // nothing of theirs to give back and changes nothing here.
        rl.refund_send("other", 2, T0 + 1);
        assert_eq!(
            remaining(rl.check_and_charge_send("tok", 1, T0 + 3).unwrap()),
            vec![3, 3, 3]
        );
        // With the layers off nothing is logged, and the refund leaves them off.
        let off = limits(0, 0, 0, 0, 0);
        off.check_and_charge_send("tok", 1, T0).unwrap();
        off.refund_send("tok", 1, T0);
        assert!(off.check_and_charge_send("tok", 1, T0).unwrap().is_empty());
    }

    #[test]
    fn monthly_resets_at_the_calendar_month() {
        let rl = limits(0, 1, 0, 0, 0);
        rl.check_and_charge_send("tok", 1, T0).unwrap();
        let refused = rl.check_and_charge_send("tok", 1, T0).unwrap_err();
        assert_eq!(refused.layer, Layer::TokenMonthly);
        assert_eq!(refused.reset, next_month_start(T0));
        let next_month = next_month_start(T0) * 1000 + 1;
        assert!(rl.check_and_charge_send("tok", 1, next_month).is_ok());
    }

    #[test]
    fn december_rolls_into_january() {
        let dec = chrono::NaiveDate::from_ymd_opt(2026, 12, 15)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let jan = chrono::NaiveDate::from_ymd_opt(2027, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(next_month_start(dec.timestamp_millis()), jan.timestamp());
        assert_eq!(month_key(dec.timestamp_millis()), "2026-12");
    }

    #[test]
    fn zero_disables_a_layer() {
        let rl = limits(0, 0, 0, 0, 0);
        for _ in 0..1000 {
            assert!(rl.check_ip(IP, T0).unwrap().is_empty());
            assert!(rl.check_and_charge_send("t", 1, T0).unwrap().is_empty());
        }
    }

    #[test]
    fn restore_brings_back_persistent_counts() {
        let rl = limits(0, 3, 2, 0, 0);
        rl.restore(&month_key(T0), vec![("tok".into(), 3)], vec![]);
        assert_eq!(
            rl.check_and_charge_send("tok", 1, T0).unwrap_err().layer,
            Layer::TokenMonthly
        );
        rl.restore(&month_key(T0), vec![], vec![(7, T0 - 1000), (7, T0 - 500)]);
        assert_eq!(
            rl.check_and_charge_send("other", 7, T0).unwrap_err().layer,
            Layer::ReceiverDaily
        );
    }

    #[test]
    fn binding_layer_is_smallest_fraction_then_table_order() {
        let st = |layer, limit, remaining| LayerStatus {
            layer,
            limit,
            remaining,
            reset: 0,
        };
        let statuses = [
            st(Layer::TokenBurst, 60, 30),
            st(Layer::TokenMonthly, 500, 250),
            st(Layer::IpMinute, 20, 5),
        ];
        assert_eq!(binding(&statuses).unwrap().layer, Layer::IpMinute);
        let tie = [st(Layer::IpHour, 10, 5), st(Layer::TokenBurst, 60, 30)];
        assert_eq!(binding(&tie).unwrap().layer, Layer::TokenBurst);
        assert_eq!(binding(&[]), None);
    }
}
