//! What starts an enrichment: the body a Logic App "Microsoft Sentinel incident" trigger passes on (contract
//! §6, every field optional), the alert trigger's body, or `{"incidentId": "<guid or ARM id>"}` by hand.

use serde_json::Value;

/// The incident to enrich, and the workspace path when the body names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRef {
    /// The incident's ARM name (a GUID).
    pub name: String,
    /// `/subscriptions/…/resourceGroups/…/providers/Microsoft.OperationalInsights/workspaces/…`, when known.
    pub workspace_resource_id: Option<String>,
}

/// Splits an incident ARM id into the workspace resource id and the incident name (case-insensitively:
/// triggers write `Incidents`).
pub fn parse_arm_id(id: &str) -> Option<IncidentRef> {
    let lower = id.to_ascii_lowercase();
    let marker = "/providers/microsoft.securityinsights/incidents/";
    let at = lower.find(marker)?;
    let name = id[at + marker.len()..].trim_end_matches('/').to_string();
    // The name reaches other ARM paths with the function's token: only an incident name's characters.
    if !is_name(&name) {
        return None;
    }
    let ws = id[..at].to_string();
    is_workspace_id(&ws).then_some(IncidentRef { name, workspace_resource_id: Some(ws) })
}

/// `/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.OperationalInsights/workspaces/<name>`, with
/// ARM's characters for each name (resource groups: letters, digits, `-_.()`; workspaces: letters, digits, `-`).
fn is_workspace_id(ws: &str) -> bool {
    let parts: Vec<&str> = ws.split('/').collect();
    let [empty, subs, sub, rgs, rg, providers, ns, workspaces, name] = parts.as_slice() else { return false };
    let part = |s: &str, extra: &str| !s.is_empty() && s.len() <= 90 && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    empty.is_empty()
        && subs.eq_ignore_ascii_case("subscriptions")
        && part(sub, "-")
        && rgs.eq_ignore_ascii_case("resourcegroups")
        && part(rg, "-_.()")
        && providers.eq_ignore_ascii_case("providers")
        && ns.eq_ignore_ascii_case("microsoft.operationalinsights")
        && workspaces.eq_ignore_ascii_case("workspaces")
        && part(name, "-")
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Why a trigger body names no incident we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("incidentId '{0}' is neither an incident name nor an incident ARM id")]
    BadIncidentId(String),
    #[error("no incident in the body: expected object.id or object.name (incident trigger), ExtendedProperties.IncidentArmId (alert trigger) or incidentId")]
    NoIncident,
    /// The body names a workspace this cannot read: refused rather than enriched without the workspace check.
    #[error("the body names the incident's workspace in {0}, but not as an ARM workspace path: refused rather than enriched unchecked")]
    UnreadableWorkspace(&'static str),
}

/// Finds the incident in a trigger body; the error says what was looked for.
pub fn incident_from_body(body: &Value) -> Result<IncidentRef, TriggerError> {
    // Manual runs: {"incidentId": "<guid>"} or {"incidentId": "/subscriptions/…/incidents/<guid>"}.
    if let Some(id) = body.get("incidentId").or_else(|| body.get("incidentArmId")).and_then(Value::as_str) {
        if let Some(r) = parse_arm_id(id) {
            return Ok(r);
        }
        if is_name(id) {
            return Ok(IncidentRef { name: id.to_string(), workspace_resource_id: None });
        }
        return Err(TriggerError::BadIncidentId(crate::model::text::printable(id, 80)));
    }
    // The incident trigger: object.id (ARM id) or object.name, with workspaceInfo for the path.
    if let Some(obj) = body.get("object") {
        if let Some(id) = obj.get("id").filter(|v| !v.is_null()) {
            // An incident id that names a workspace is the workspace check's input: one that cannot be read
            // fails closed, never falls back to the name alone.
            return id.as_str().and_then(parse_arm_id).ok_or(TriggerError::UnreadableWorkspace("object.id"));
        }
        if let Some(name) = obj.get("name").and_then(Value::as_str).filter(|n| is_name(n)) {
            let ws = match body.get("workspaceInfo").filter(|v| !v.is_null()) {
                None => None,
                Some(w) => {
                    let read = || {
                        let s = w.get("SubscriptionId")?.as_str()?;
                        let g = w.get("ResourceGroupName")?.as_str()?;
                        let n = w.get("WorkspaceName")?.as_str()?;
                        Some(format!("/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.OperationalInsights/workspaces/{n}"))
                    };
                    Some(read().filter(|ws| is_workspace_id(ws)).ok_or(TriggerError::UnreadableWorkspace("workspaceInfo"))?)
                }
            };
            return Ok(IncidentRef { name: name.to_string(), workspace_resource_id: ws });
        }
    }
    // The alert trigger carries the incident's ARM id in its extended properties when the alert made one.
    for path in [&["ExtendedProperties", "IncidentArmId"][..], &["properties", "incidentArmId"][..], &["IncidentArmId"][..]] {
        let mut v = body;
        for k in path {
            v = match v.get(k) {
                Some(x) => x,
                None => break,
            };
        }
        if let Some(r) = v.as_str().and_then(parse_arm_id) {
            return Ok(r);
        }
    }
    Err(TriggerError::NoIncident)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WS: &str = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/ws1";

    #[test]
    fn finds_the_incident_in_every_trigger_shape() {
        let id = format!("{WS}/providers/Microsoft.SecurityInsights/Incidents/9f0c6a1e-1111-4222-8333-444455556666");
        let playbook = json!({"objectSchemaType": "Incident", "object": {"id": id, "name": "9f0c6a1e-1111-4222-8333-444455556666"}});
        let r = incident_from_body(&playbook).unwrap();
        assert_eq!(r.name, "9f0c6a1e-1111-4222-8333-444455556666");
        assert_eq!(r.workspace_resource_id.as_deref(), Some(WS));
        let by_name = json!({"object": {"name": "abc-1"}, "workspaceInfo": {"SubscriptionId": "s1", "ResourceGroupName": "rg1", "WorkspaceName": "ws1"}});
        assert_eq!(incident_from_body(&by_name).unwrap().workspace_resource_id.as_deref(), Some(WS));
        assert_eq!(incident_from_body(&json!({"incidentId": "abc-1"})).unwrap().name, "abc-1");
        assert_eq!(incident_from_body(&json!({"incidentId": id})).unwrap().name, "9f0c6a1e-1111-4222-8333-444455556666");
        let alert = json!({"ExtendedProperties": {"IncidentArmId": id}});
        assert_eq!(incident_from_body(&alert).unwrap().name, "9f0c6a1e-1111-4222-8333-444455556666");
        assert!(incident_from_body(&json!({})).unwrap_err().to_string().contains("object.id"));
        assert!(incident_from_body(&json!({"incidentId": "a b/../c"})).is_err());
        // Names from an ARM id follow the name grammar: nothing that would change the path it is put in.
        for bad in ["x?api-version=1", "x#frag", "..\\..\\roleAssignments", "x%2F..", "x/comments/1"] {
            let id = format!("{WS}/providers/Microsoft.SecurityInsights/Incidents/{bad}");
            assert!(incident_from_body(&json!({"object": {"id": id}})).is_err(), "{bad}");
        }
        let forged = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/x/../providers/Microsoft.SecurityInsights/incidents/abc";
        assert!(parse_arm_id(forged).is_none());
    }

    /// A body that names the incident's workspace in a way that cannot be read is refused: enriching it without
    /// the workspace check would act on whatever incident of that name this bridge's workspace holds.
    #[test]
    fn an_unreadable_workspace_fails_closed() {
        let bad_id = json!({"object": {"id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/../x/providers/Microsoft.SecurityInsights/Incidents/abc-1", "name": "abc-1"}});
        assert_eq!(incident_from_body(&bad_id), Err(TriggerError::UnreadableWorkspace("object.id")));
        let bad_info = json!({"object": {"name": "abc-1"}, "workspaceInfo": {"SubscriptionId": "s1", "ResourceGroupName": "rg/../x", "WorkspaceName": "ws1"}});
        assert_eq!(incident_from_body(&bad_info), Err(TriggerError::UnreadableWorkspace("workspaceInfo")));
        let partial = json!({"object": {"name": "abc-1"}, "workspaceInfo": {"SubscriptionId": "s1"}});
        assert!(incident_from_body(&partial).is_err());
        // No workspace named at all: the name alone, checked against this bridge's workspace by Sentinel.
        assert_eq!(incident_from_body(&json!({"object": {"name": "abc-1"}})).unwrap().workspace_resource_id, None);
    }
}
