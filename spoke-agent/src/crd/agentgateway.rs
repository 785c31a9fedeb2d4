//! agentgateway's `agentgateway.dev/v1alpha1` AgentgatewayBackend, as tenants write it for
//! agentgateway: the fields fleetgate translates are typed, everything else is kept in an
//! `other` map so that it parses (a tenant's manifest applies unchanged) and `translate` can
//! name what it does not support yet instead of silently ignoring it.
//!
//! Where it sits: below the data path with the other kinds of [`crate::crd`]: the sources read
//! it into [`crate::state::ClusterState::ai_backends`], `translate::ai_backend` turns it into a
//! `KIND_AI_BACKEND` object and `status` writes its `status.conditions`. The CRD the tenant
//! cluster serves is `deploy/crds/agentgateway.dev_agentgatewaybackends.yaml` (a test checks its
//! names against this type). No logic.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The API group of agentgateway's kinds (also the group of a backendRef to an
/// AgentgatewayBackend).
pub const AGENTGATEWAY_GROUP: &str = "agentgateway.dev";
/// The kind of a backendRef to an AgentgatewayBackend.
pub const AGENTGATEWAY_BACKEND_KIND: &str = "AgentgatewayBackend";

/// Fields fleetgate does not read, by name, with their values as written.
pub type Other = BTreeMap<String, serde_json::Value>;

/// `spec` of an AgentgatewayBackend: exactly one of `ai`, `static`, `mcp`, `a2a`, `aws`,
/// `dynamicForwardProxy` (the CRD's CEL rule), plus `policies`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "agentgateway.dev",
    version = "v1alpha1",
    kind = "AgentgatewayBackend",
    plural = "agentgatewaybackends",
    namespaced,
    status = "AgentgatewayBackendStatus",
    schema = "disabled",
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct AgentgatewayBackendSpec {
    /// An LLM backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiSpec>,
    /// An agent speaking the A2A protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a: Option<A2aSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Policies>,
    /// `static`, `mcp`, `aws`, `dynamicForwardProxy` and any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.a2a`: where an A2A agent listens (both required by the CRD).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct A2aSpec {
    #[serde(default)]
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.mcp`: MCP servers federated behind one endpoint. Kept in [`AgentgatewayBackendSpec::other`]
/// when the backend is read (a malformed `mcp` must not keep the whole backend from being read
/// and given a status); `translate::mcp_backend` reads it into this type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpSpec {
    #[serde(default)]
    pub targets: Vec<McpTargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_routing: Option<String>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.mcp.targets[]`: a name and exactly one of `static` and `selector`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpTargetSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_target: Option<McpStaticTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<McpSelector>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.mcp.targets[].selector`: Services by label, in namespaces by label (at least one set).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpSelector {
    /// Namespaces whose Services are selected; unset: the backend's own namespace only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<LabelSelector>,
    /// Which Services; unset: every Service of those namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<LabelSelector>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.mcp.targets[].static.backendRef`: a Service of the backend's namespace, by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    #[serde(default)]
    pub name: String,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.mcp.targets[].static`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpStaticTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `StreamableHTTP` or `SSE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Instead of `host`: a Service of the backend's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<LocalRef>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.ai`: exactly one of `provider` and `groups`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AiSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Providers in priority groups (failover), the first group first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<PriorityGroup>>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.ai.groups[]`: providers of equal priority.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PriorityGroup {
    #[serde(default)]
    pub providers: Vec<NamedProvider>,
    /// Any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.ai.groups[].providers[]`: agentgateway's NamedLLMProvider, a [`Provider`] with a name
/// and its own `policies` (merged over the backend's).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamedProvider {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Policies>,
    /// The provider kind, host, port, path, pathPrefix and any other field.
    #[serde(flatten)]
    pub provider: Provider,
}

/// `spec.ai.provider`: exactly one provider kind, and overrides of where it is reached.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAi>,
    /// `spec.ai.provider.anthropic`: the same shape (`model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<OpenAi>,
    /// `spec.ai.provider.gemini`: the same shape (`model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemini: Option<OpenAi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The other provider kinds (`vertexai`, `bedrock`, `azureopenai`,
    /// `azure`, `custom`) and any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.ai.provider.openai`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OpenAi {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `moderation` and any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.policies`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Policies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// `policies.ai`: fleetgate reads `modelAliases`; its other fields stay in
    /// [`AiPolicy::other`] and are reported as unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiPolicy>,
    /// `http`, `tls`, `tcp`, `health`, `mcp`, ... and any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.policies.ai`: agentgateway's AI policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AiPolicy {
    /// `modelAliases`: a requested model name -> the model sent upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_aliases: Option<BTreeMap<String, String>>,
    /// `promptGuard`, `defaults`, `overrides`, `prompt`, `routes`, ... and any other field.
    #[serde(flatten)]
    pub other: Other,
}

/// `spec.policies.auth`: at most one of `key`, `secretRef`, `passthrough` (and kinds fleetgate
/// does not support, in `other`).
#[derive(Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// An inline provider key. Never in `Debug` output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// `passthrough: {}`: the client's own Authorization goes to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<serde_json::Value>,
    /// `aws`, `azure`, `gcp`, `credentials`, `location`, ... and any other field.
    #[serde(flatten)]
    pub other: Other,
}

impl std::fmt::Debug for Auth {
    /// Redacts the inline key: an AgentgatewayBackend may reach a log through its `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("secret_ref", &self.secret_ref)
            .field("passthrough", &self.passthrough)
            .field("other", &self.other.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `spec.policies.auth.secretRef`: a Secret of the backend's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub name: String,
    /// The Secret key holding the provider key; unset: `Authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Empty or unset: the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Empty or unset: `Secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `status` of an AgentgatewayBackend: what the hub decided, written by the agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentgatewayBackendStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    /// The tutorial's backend parses; unknown fields are kept, by name, for `translate` to
    /// report; the inline key never shows in `Debug`.
    #[test]
    fn agentgateway_yaml_parses_and_keeps_what_fleetgate_does_not_read() {
        let yaml = r#"
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: local-llm, namespace: agentgateway-system}
spec:
  ai:
    provider:
      host: llama-cpp.llm.svc.cluster.local
      port: 8080
      openai: {model: gemma-4-12b-it, moderation: {model: omni}}
  policies:
    auth: {key: sk-inline-secret-value}
    http: {requestTimeout: 10s}
  futureField: 1
"#;
        let b: AgentgatewayBackend = serde_yaml::from_str(yaml).unwrap();
        let p = b.spec.ai.as_ref().unwrap().provider.as_ref().unwrap();
        assert_eq!(p.host.as_deref(), Some("llama-cpp.llm.svc.cluster.local"));
        assert_eq!(p.port, Some(8080));
        let openai = p.openai.as_ref().unwrap();
        assert_eq!(openai.model.as_deref(), Some("gemma-4-12b-it"));
        assert!(openai.other.contains_key("moderation"));
        let policies = b.spec.policies.as_ref().unwrap();
        assert!(policies.other.contains_key("http"));
        assert!(b.spec.other.contains_key("futureField"));
        let debug = format!("{b:?}");
        assert!(!debug.contains("sk-inline-secret-value"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    /// The CRD of deploy/ serves this type: same group, version, kind, plural, scope, a status
    /// subresource, and a schema that declares every field the agent reads (so none is pruned).
    #[test]
    fn the_deployed_crd_matches_this_type() {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
            CustomResourceDefinition, JSONSchemaProps,
        };
        let crd: CustomResourceDefinition = serde_yaml::from_str(include_str!(
            "../../../deploy/crds/agentgateway.dev_agentgatewaybackends.yaml"
        ))
        .expect("the CRD parses");
        assert_eq!(AgentgatewayBackend::group(&()), AGENTGATEWAY_GROUP);
        assert_eq!(AgentgatewayBackend::kind(&()), AGENTGATEWAY_BACKEND_KIND);
        assert_eq!(crd.spec.group, AgentgatewayBackend::group(&()));
        assert_eq!(crd.spec.names.kind, AgentgatewayBackend::kind(&()));
        assert_eq!(crd.spec.names.plural, AgentgatewayBackend::plural(&()));
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(
                format!(
                    "{}.{}",
                    AgentgatewayBackend::plural(&()),
                    AGENTGATEWAY_GROUP
                )
                .as_str()
            )
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let [version] = crd.spec.versions.as_slice() else {
            panic!("one version")
        };
        assert_eq!(version.name, AgentgatewayBackend::version(&()));
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
                s = s
                    .properties
                    .as_ref()
                    .and_then(|props| props.get(p))
                    .unwrap_or_else(|| panic!("the CRD schema lacks {path}"));
            }
            s
        }
        for (path, ty) in [
            ("spec.ai.provider.openai.model", "string"),
            ("spec.ai.provider.host", "string"),
            ("spec.ai.provider.port", "integer"),
            ("spec.ai.provider.path", "string"),
            ("spec.ai.provider.pathPrefix", "string"),
            ("spec.policies.auth.key", "string"),
            ("spec.policies.auth.secretRef.name", "string"),
            ("spec.policies.auth.secretRef.key", "string"),
            ("spec.policies.auth.secretRef.group", "string"),
            ("spec.policies.auth.secretRef.kind", "string"),
            ("spec.policies.auth.passthrough", "object"),
            ("spec.policies.ai.modelAliases", "object"),
            ("spec.a2a.host", "string"),
            ("spec.a2a.port", "integer"),
            ("status.conditions", "array"),
        ] {
            assert_eq!(at(root, path).type_.as_deref(), Some(ty), "{path}");
        }
        // What fleetgate does not read is kept for the agent to report, not pruned.
        for path in [
            "spec",
            "spec.ai",
            "spec.ai.provider",
            "spec.policies",
            "spec.policies.auth",
            "spec.policies.ai",
        ] {
            assert_eq!(
                at(root, path).x_kubernetes_preserve_unknown_fields,
                Some(true),
                "{path}"
            );
        }
    }
}
