//! kube-rs, typed and dynamic, against the sandbox: CRUD, conflicts, 404s, selectors,
//! patches, server-side apply and watch.

mod common;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn api_status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, data: serde_json::Value, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels }, "data": data }))
        .expect("configmap")
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_conflicts_and_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "bringup");

    let created = cms
        .create(
            &PostParams::default(),
            &cm("a", json!({"k": "v"}), json!({})),
        )
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());

    let dup = api_status(
        cms.create(&PostParams::default(), &cm("a", json!({}), json!({})))
            .await
            .expect_err("duplicate"),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"a\" already exists");

    let missing = api_status(cms.get("nope").await.expect_err("missing"));
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"nope\" not found");

    let mut fresh = cms.get("a").await.expect("get");
    let stale = fresh.clone();
    fresh
        .data
        .get_or_insert_default()
        .insert("k".into(), "w".into());
    let replaced = cms
        .replace("a", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_ne!(
        replaced.metadata.resource_version,
        stale.metadata.resource_version
    );
    let conflict = api_status(
        cms.replace("a", &PostParams::default(), &stale)
            .await
            .expect_err("stale"),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(conflict.message.contains("the object has been modified"));

    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "missing-ns");
    let no_ns = api_status(
        elsewhere
            .create(&PostParams::default(), &cm("a", json!({}), json!({})))
            .await
            .expect_err("no ns"),
    );
    assert_eq!(no_ns.message, "namespaces \"missing-ns\" not found");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bringup");
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
    )
    .expect("secret");
    let s = secrets
        .create(&PostParams::default(), &s)
        .await
        .expect("secret");
    assert_eq!(s.data.expect("data")["password"].0, b"hunter2");
    assert!(s.string_data.is_none());

    cms.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(
        api_status(
            cms.delete("a", &DeleteParams::default())
                .await
                .expect_err("gone")
        )
        .code,
        404
    );

    let namespaces: Api<Namespace> = Api::all(client);
    let kube_system = namespaces.get("kube-system").await.expect("kube-system");
    assert_eq!(
        kube_system.metadata.uid.as_deref(),
        Some(sandbox.state().cluster_uid().as_str())
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn selectors_patches_and_server_side_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        cms.create(
            &PostParams::default(),
            &cm(name, json!({}), json!({"tier": tier, "app": "x"})),
        )
        .await
        .expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier=front"))
                .await
                .expect("list")
        ),
        vec!["a", "c"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier notin (front),app"))
                .await
                .expect("list")
        ),
        vec!["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("!tier"))
                .await
                .expect("list")
        ),
        vec!["kube-root-ca.crt"],
        "only the root CA ConfigMap every namespace has lacks the label"
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .expect("list")
        ),
        vec!["b"]
    );

    let merged = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"m": "1"}})),
        )
        .await
        .expect("merge");
    assert_eq!(merged.data.expect("data")["m"], "1");
    let strategic = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"s": "2"}})),
        )
        .await
        .expect("strategic");
    assert_eq!(strategic.data.expect("data").len(), 2);
    // kube is built without its jsonpatch feature here; send the JSON patch by hand.
    let resp = reqwest::Client::new()
        .patch(format!(
            "{}/api/v1/namespaces/demo/configmaps/a",
            sandbox.url()
        ))
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op": "remove", "path": "/data/m"}]"#)
        .send()
        .await
        .expect("json patch");
    assert_eq!(resp.status(), 200);
    let patched = cms.get("a").await.expect("get");
    assert_eq!(
        patched.data.expect("data").keys().collect::<Vec<_>>(),
        vec!["s"]
    );

    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "mine"}});
    let first = cms
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&applied))
        .await
        .expect("apply creates");
    let again = cms
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&applied))
        .await
        .expect("apply again");
    assert_eq!(
        first.metadata.resource_version, again.metadata.resource_version,
        "a no-op apply keeps the resourceVersion"
    );
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "theirs"}});
    let conflict = api_status(
        cms.patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&theirs))
            .await
            .expect_err("conflict"),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(
        conflict.message.contains("conflict with \"alice\""),
        "{}",
        conflict.message
    );
    let forced = cms
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .expect("forced");
    assert_eq!(forced.data.expect("data")["k"], "theirs");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["bob"]);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_api_custom_resources_and_pod_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = common::cluster_file(
        dir.path(),
        "namespaces: [w]\nresources:\n  - { group: example.io, version: v1, kind: Widget, plural: widgets, namespaced: true }\npods:\n  - { name: p, namespace: w, containers: [{ name: c }], ready: false }\n",
    );
    let sandbox = common::start(file, dir.path()).await;
    let client = common::client(&sandbox).await;
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (widget, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.io", "v1", "Widget"))
        .expect("widget discovered");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "w", &widget);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})).expect("widget");
    let created = widgets
        .create(&PostParams::default(), &w)
        .await
        .expect("create widget");
    assert_eq!(created.metadata.generation, Some(1));
    let bumped = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .expect("patch");
    assert_eq!(bumped.metadata.generation, Some(2));

    let css = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("external-secrets.io", "v1", "ClusterSecretStore"),
        "clustersecretstores",
    );
    let stores: Api<DynamicObject> = Api::all_with(client.clone(), &css);
    assert!(
        stores
            .list(&ListParams::default())
            .await
            .expect("list stores")
            .items
            .is_empty()
    );

    let pods: Api<Pod> = Api::namespaced(client, "w");
    let pod = pods.get("p").await.expect("pod");
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
    };
    assert_eq!(ready(&pod).as_deref(), Some("False"));
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let patched = pods
        .patch_status("p", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("status");
    assert_eq!(ready(&patched).as_deref(), Some("True"));
    assert_eq!(
        patched.status.and_then(|s| s.pod_ip).as_deref(),
        Some("10.244.0.10")
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_sends_existing_objects_then_changes_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    cms.create(&PostParams::default(), &cm("before", json!({}), json!({})))
        .await
        .expect("create");
    let mut stream = cms
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .expect("watch")
        .boxed();
    // From "0": every existing object, the namespace's root CA ConfigMap included.
    let mut existing = Vec::new();
    for _ in 0..2 {
        match stream.try_next().await.expect("event") {
            Some(WatchEvent::Added(c)) => existing.push(c.metadata.name.unwrap_or_default()),
            other => panic!("expected ADDED of an existing object, got {other:?}"),
        }
    }
    existing.sort();
    assert_eq!(existing, ["before", "kube-root-ca.crt"]);
    let after = cms
        .create(&PostParams::default(), &cm("after", json!({}), json!({})))
        .await
        .expect("create");
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Added(c)) => assert_eq!(c.metadata.name.as_deref(), Some("after")),
        other => panic!("expected ADDED after, got {other:?}"),
    }
    cms.delete("before", &DeleteParams::default())
        .await
        .expect("delete");
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Deleted(c)) => assert_eq!(c.metadata.name.as_deref(), Some("before")),
        other => panic!("expected DELETED, got {other:?}"),
    }
    // Resuming from the resourceVersion of `after` replays only what came later.
    let rv = after.metadata.resource_version.expect("rv");
    let mut resumed = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch")
        .boxed();
    match resumed.try_next().await.expect("event") {
        Some(WatchEvent::Deleted(c)) => assert_eq!(c.metadata.name.as_deref(), Some("before")),
        other => panic!("expected the replayed DELETED, got {other:?}"),
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_namespace_has_the_root_ca_configmap_as_in_kubernetes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let ca = |ns: &str| {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        async move { cms.get("kube-root-ca.crt").await }
    };
    for ns in ["kube-system", "vault", "demo"] {
        let cm = ca(ns).await.expect("seeded namespaces have it");
        assert_eq!(
            cm.data.unwrap()["ca.crt"],
            bringup_sandbox::tokens::CLUSTER_CA_PEM
        );
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "later"}})).unwrap(),
        )
        .await
        .expect("create");
    namespaces
        .patch(
            "applied",
            &PatchParams::apply("t"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "applied"}}),
            ),
        )
        .await
        .expect("apply");
    for ns in ["later", "applied"] {
        assert!(
            ca(ns).await.expect("new namespaces get it").data.unwrap()["ca.crt"]
                .contains("BEGIN CERTIFICATE")
        );
    }
    sandbox.shutdown().await;
}
