//! Device selection (SPEC §1.4) and token scope (§1.9): which of the owner's devices a send
//! reaches, and the warnings that explain the choice. Pure: the caller supplies the devices.

use crate::api::{DeviceType, Warning};

/// What selection needs to know about a device; the caller's own device type implements it,
/// so the devices selected are the caller's, not copies.
pub trait Selectable {
    fn id(&self) -> &str;
    fn label(&self) -> &str;
    fn device_type(&self) -> DeviceType;
}

/// Does one selector entry (already trimmed) match this device?
fn entry_matches(entry: &str, device: &impl Selectable) -> bool {
    let lower = entry.to_lowercase();
    match lower.as_str() {
        "all" => true,
        "mobile" | "phone" => device.device_type() == DeviceType::Android,
        "desktop" => device.device_type() == DeviceType::Extension,
        "web" => device.device_type() == DeviceType::Webpush,
        _ if lower.starts_with("dev_") && device.id().eq_ignore_ascii_case(entry) => true,
        _ => device.label().to_lowercase() == lower,
    }
}

fn entries(selector: &str) -> impl Iterator<Item = &str> {
    selector
        .split(',')
        .map(str::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// Resolves `selector` against the owner's devices, then drops what the token's scope does
/// not reach. Result order follows `devices`; ids are de-duplicated.
pub fn select<'a, D: Selectable>(
    selector: &str,
    devices: &'a [D],
    scope: Option<&str>,
    token_label: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<&'a D> {
    if devices.is_empty() {
        warnings.push(Warning::NoPairedDevices);
        return Vec::new();
    }
    let mut chosen = vec![false; devices.len()];
    let mut unknown = 0;
    let mut total = 0;
    for entry in entries(selector) {
        total += 1;
        let mut matched = false;
        for (i, device) in devices.iter().enumerate() {
            if entry_matches(entry, device) {
                chosen[i] = true;
                matched = true;
            }
        }
        if !matched {
            unknown += 1;
            warnings.push(Warning::UnknownDeviceLabel(entry.to_owned()));
        }
    }
    if total > 0 && unknown == total {
        warnings.push(Warning::DeviceFallback);
        chosen.iter_mut().for_each(|c| *c = true);
    }

    let mut selected = Vec::new();
    let mut dropped = Vec::new();
    for (device, _) in devices.iter().zip(&chosen).filter(|(_, c)| **c) {
        let in_scope = scope.is_none_or(|scope| entries(scope).any(|e| entry_matches(e, device)));
        if in_scope {
            selected.push(device);
        } else {
            dropped.push(device.id().to_owned());
        }
    }
    if !dropped.is_empty() {
        warnings.push(Warning::ScopeDropped {
            label: token_label.to_owned(),
            device_ids: dropped,
        });
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct DeviceRef {
        id: String,
        label: String,
        device_type: DeviceType,
    }

    impl Selectable for DeviceRef {
        fn id(&self) -> &str {
            &self.id
        }
        fn label(&self) -> &str {
            &self.label
        }
        fn device_type(&self) -> DeviceType {
            self.device_type
        }
    }

    fn dev(id: &str, label: &str, t: DeviceType) -> DeviceRef {
        DeviceRef {
            id: id.into(),
            label: label.into(),
            device_type: t,
        }
    }

    fn fleet() -> Vec<DeviceRef> {
        vec![
            dev("dev_0000000000000001", "Pixel", DeviceType::Android),
            dev("dev_0000000000000002", "laptop", DeviceType::Extension),
            dev("dev_0000000000000003", "pixel", DeviceType::Android),
        ]
    }

    fn ids<'a>(devs: impl IntoIterator<Item = &'a DeviceRef>) -> Vec<&'a str> {
        devs.into_iter().map(|d| &d.id[d.id.len() - 1..]).collect()
    }

    fn run(selector: &str, scope: Option<&str>) -> (Vec<DeviceRef>, Vec<String>) {
        let mut w = Vec::new();
        let fleet = fleet();
        let got = select(selector, &fleet, scope, "ci", &mut w);
        let got = got.into_iter().cloned().collect();
        (got, w.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn all_and_kinds() {
        assert_eq!(ids(&run("all", None).0), ["1", "2", "3"]);
        assert_eq!(ids(&run("mobile", None).0), ["1", "3"]);
        assert_eq!(ids(&run("PHONE", None).0), ["1", "3"]);
        assert_eq!(ids(&run("desktop", None).0), ["2"]);
    }

    #[test]
    fn web_selects_webpush_devices_only() {
        let mut devices = fleet();
        devices.push(dev("dev_0000000000000004", "browser", DeviceType::Webpush));
        let mut w = Vec::new();
        assert_eq!(ids(select("WEB", &devices, None, "ci", &mut w)), ["4"]);
        assert_eq!(
            ids(select("mobile,web", &devices, None, "ci", &mut w)),
            ["1", "3", "4"]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn labels_are_case_insensitive_and_not_unique_and_deduplicated() {
        let (got, warnings) = run(" PIXEL , dev_0000000000000001,mobile", None);
        assert_eq!(ids(&got), ["1", "3"]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn unknown_entry_warns() {
        let (got, warnings) = run("laptop,tv", None);
        assert_eq!(ids(&got), ["2"]);
        assert_eq!(warnings, ["unknown device label: 'tv'"]);
    }

    #[test]
    fn all_unknown_falls_back_to_every_device() {
        let (got, warnings) = run("tv,fridge", None);
        assert_eq!(ids(&got), ["1", "2", "3"]);
        assert_eq!(
            warnings,
            [
                "unknown device label: 'tv'",
                "unknown device label: 'fridge'",
                "device fallback: all entries unknown, delivering to every paired device"
            ]
        );
    }

    #[test]
    fn no_devices() {
        let mut w = Vec::new();
        assert!(select::<DeviceRef>("all", &[], None, "ci", &mut w).is_empty());
        assert_eq!(w, [Warning::NoPairedDevices]);
    }

    #[test]
    fn scope_drops_out_of_scope_devices() {
        let (got, warnings) = run("all", Some("laptop"));
        assert_eq!(ids(&got), ["2"]);
        assert_eq!(
            warnings,
            [
                "token scope 'ci' dropped out-of-scope device(s): dev_0000000000000001, dev_0000000000000003"
            ]
        );
        let (got, warnings) = run("laptop", Some("laptop,dev_0000000000000003"));
        assert_eq!(ids(&got), ["2"]);
        assert!(warnings.is_empty());
    }
}
