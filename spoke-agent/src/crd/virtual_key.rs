//! fleetgate's own `fleetgate.dev/v1alpha1` VirtualKey: a key a tenant hands one of its users for
//! some of its AgentgatewayBackends. The key itself is in a Secret of the VirtualKey's namespace;
//! only its SHA-256 leaves the cluster.
//!
//! Where it sits: below the data path with the other kinds of [`crate::crd`]: the sources read
//! it into [`crate::state::ClusterState::virtual_keys`], `translate::virtual_key` turns it into a
//! `KIND_VIRTUAL_KEY` object and `status` writes its `status.conditions`. The CRD the tenant
//! cluster serves is `deploy/crds/fleetgate.dev_virtualkeys.yaml` (a test checks it against this
//! type). No logic.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The API group of fleetgate's own kinds.
pub const FLEETGATE_GROUP: &str = "fleetgate.dev";
/// The Secret data key read when `secretRef.key` is unset.
pub const DEFAULT_KEY_SECRET_KEY: &str = "key";

/// `spec` of a VirtualKey.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "fleetgate.dev",
    version = "v1alpha1",
    kind = "VirtualKey",
    plural = "virtualkeys",
    namespaced,
    status = "VirtualKeyStatus",
    schema = "disabled",
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualKeySpec {
    /// The Secret (in the VirtualKey's namespace) holding the key users present.
    #[serde(default)]
    pub secret_ref: KeySecretRef,
    /// AgentgatewayBackends of the VirtualKey's namespace this key opens (1..=16).
    #[serde(default)]
    pub backends: Vec<BackendName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// `spec.secretRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeySecretRef {
    pub name: String,
    /// The Secret's data key; unset: [`DEFAULT_KEY_SECRET_KEY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// One of `spec.backends`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendName {
    pub name: String,
}

/// `spec.budget`: per window, each measure optional.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<i64>,
    /// A duration of 1m..31d (`1m`, `1h`, `24h`, `90m`, `7d`).
    #[serde(default)]
    pub window: String,
}

/// `status` of a VirtualKey: what the hub decided, written by the agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualKeyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    /// The CRD of deploy/ serves this type: same group, version, kind, plural, scope, a status
    /// subresource, and a schema that declares every field the agent reads.
    #[test]
    fn the_deployed_virtual_key_crd_matches_this_type() {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
            CustomResourceDefinition, JSONSchemaProps,
        };
        let crd: CustomResourceDefinition = serde_yaml::from_str(include_str!(
            "../../../deploy/crds/fleetgate.dev_virtualkeys.yaml"
        ))
        .expect("the CRD parses");
        assert_eq!(VirtualKey::group(&()), FLEETGATE_GROUP);
        assert_eq!(crd.spec.group, VirtualKey::group(&()));
        assert_eq!(crd.spec.names.kind, VirtualKey::kind(&()));
        assert_eq!(crd.spec.names.plural, VirtualKey::plural(&()));
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{}.{}", VirtualKey::plural(&()), FLEETGATE_GROUP).as_str())
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let [version] = crd.spec.versions.as_slice() else {
            panic!("one version")
        };
        assert_eq!(version.name, VirtualKey::version(&()));
        assert!(version.served && version.storage);
        assert!(
            version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some())
        );
        let root = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("a schema");
        fn at<'a>(mut s: &'a JSONSchemaProps, path: &str) -> &'a JSONSchemaProps {
            for p in path.split('.') {
                if p == "[]" {
                    s = match s.items.as_ref() {
                        Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(i)) => i,
                        _ => panic!("the CRD schema lacks items at {path}"),
                    };
                    continue;
                }
                s = s
                    .properties
                    .as_ref()
                    .and_then(|props| props.get(p))
                    .unwrap_or_else(|| panic!("the CRD schema lacks {path}"));
            }
            s
        }
        for (path, ty) in [
            ("spec.secretRef.name", "string"),
            ("spec.secretRef.key", "string"),
            ("spec.backends", "array"),
            ("spec.backends.[].name", "string"),
            ("spec.budget.requests", "integer"),
            ("spec.budget.tokens", "integer"),
            ("spec.budget.window", "string"),
            ("status.conditions", "array"),
        ] {
            assert_eq!(at(root, path).type_.as_deref(), Some(ty), "{path}");
        }
        assert_eq!(at(root, "spec.backends").max_items, Some(16));
        assert_eq!(at(root, "spec.backends").min_items, Some(1));
        // A tenant's example parses into this type.
        let vk: VirtualKey = serde_yaml::from_str(
            r#"
apiVersion: fleetgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: alice, namespace: team}
spec:
  secretRef: {name: alice-key}
  backends: [{name: local-llm}]
  budget: {requests: 1000, tokens: 200000, window: 1h}
"#,
        )
        .unwrap();
        assert_eq!(vk.spec.secret_ref.name, "alice-key");
        assert_eq!(vk.spec.backends[0].name, "local-llm");
        assert_eq!(vk.spec.budget.unwrap().window, "1h");
    }
}
