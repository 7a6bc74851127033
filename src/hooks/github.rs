//! GitHub webhooks (header `X-GitHub-Event`) → a notification per event worth one (SPEC
//! §1.18): a workflow run (one `key` per run, so its states replace each other), a push, a
//! published release, and issues and pull requests opened, closed or reopened. Each message
//! starts with the repository's full name, and `url` is the event's page. A `ping` sends
//! nothing; any other event or action sends nothing and says it was ignored.

use super::{Mapped, not_the_shape, one_line, text};
use crate::api::{ApiError, ErrorCode, Priority, SendRequest, Warning};
use serde_json::Value;

/// The event named by `X-GitHub-Event` with its JSON body.
pub fn map(event: Option<&str>, body: &Value) -> Result<Mapped, ApiError> {
    let Some(event) = event.map(str::trim).filter(|e| !e.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "a GitHub webhook names its event in the X-GitHub-Event header, which is missing",
        ));
    };
    if !body.is_object() {
        return Err(not_the_shape("github", "expected a JSON object"));
    }
    let action = text(body, "action").unwrap_or("");
    // An event mapped for some actions names the action it ignored (`issues.labeled`); any
    // other event is named alone, as SPEC §1.5 writes it.
    let ignored = || {
        let mapped_event = ["release", "issues", "pull_request"].contains(&event);
        let name = if mapped_event && !action.is_empty() {
            format!("{event}.{action}")
        } else {
            event.to_owned()
        };
        Ok(Mapped::Nothing(vec![Warning::GithubEventIgnored(name)]))
    };
    let mapped = match (event, action) {
        ("ping", _) => return Ok(Mapped::Nothing(Vec::new())),
        ("workflow_run", _) => workflow_run(body)?,
        ("push", _) => push(body)?,
        ("release", "published") => release(body)?,
        ("issues", "opened" | "closed" | "reopened") => issue(body, action)?,
        ("pull_request", "opened" | "closed" | "reopened") => pull_request(body, action)?,
        _ => return ignored(),
    };
    Ok(Mapped::Send(SendRequest {
        tags: Some(vec!["github".to_owned(), event.to_owned()]),
        ..mapped
    }))
}

/// `repository.full_name`, which every mapped event carries.
fn repository(body: &Value) -> Result<&str, ApiError> {
    body.get("repository")
        .and_then(|r| text(r, "full_name"))
        .ok_or_else(|| not_the_shape("github", "expected \"repository\" with its \"full_name\""))
}

/// The object at `key`, or 400 naming it.
fn object<'a>(body: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    body.get(key)
        .filter(|v| v.is_object())
        .ok_or_else(|| not_the_shape("github", &format!("expected an object \"{key}\"")))
}

/// Who did it: `sender.login`, else `someone`.
fn sender(body: &Value) -> &str {
    body.get("sender")
        .and_then(|s| text(s, "login"))
        .unwrap_or("someone")
}

/// `completed`: passed or failed (priority `high`); any other action: running. Every state of
/// one run has the key `gh:run:<id>`, so the last replaces the others.
fn workflow_run(body: &Value) -> Result<SendRequest, ApiError> {
    let repo = repository(body)?;
    let run = object(body, "workflow_run")?;
    let id = run.get("id").and_then(Value::as_u64).ok_or_else(|| {
        not_the_shape("github", "expected \"workflow_run\" with a numeric \"id\"")
    })?;
    let workflow = text(run, "name")
        .or_else(|| body.get("workflow").and_then(|w| text(w, "name")))
        .unwrap_or("workflow");
    let branch = text(run, "head_branch").unwrap_or("?");
    let conclusion = text(run, "conclusion");
    let (title, priority) = match (text(body, "action"), conclusion) {
        (Some("completed"), Some("success")) => (
            format!("✔ {workflow} passed on {branch}"),
            Priority::Default,
        ),
        (Some("completed"), _) => (format!("✘ {workflow} failed on {branch}"), Priority::High),
        _ => (format!("{workflow} running on {branch}"), Priority::Low),
    };
    let mut message = format!(
        "{repo}: {}",
        one_line(text(run, "display_title").unwrap_or(""))
    );
    if let Some(n) = run.get("run_number").and_then(Value::as_u64) {
        message.push_str(&format!(" (run #{n})"));
    }
    // A run that ended without passing or failing says how it ended.
    if let Some(other) = conclusion.filter(|c| !matches!(*c, "success" | "failure")) {
        message.push_str(&format!(", {other}"));
    }
    Ok(SendRequest {
        message,
        title: Some(title),
        priority: Some(priority),
        url: text(run, "html_url").map(str::to_owned),
        key: Some(format!("gh:run:{id}")),
        ..SendRequest::default()
    })
}

/// `<pusher> pushed <n> commit(s) to <branch>`, one line per commit (short id and subject).
fn push(body: &Value) -> Result<SendRequest, ApiError> {
    let repo = repository(body)?;
    let reference =
        text(body, "ref").ok_or_else(|| not_the_shape("github", "expected a push's \"ref\""))?;
    let (kind, name) = match reference.strip_prefix("refs/tags/") {
        Some(tag) => ("tag", tag),
        None => (
            "branch",
            reference.strip_prefix("refs/heads/").unwrap_or(reference),
        ),
    };
    let pusher = body
        .get("pusher")
        .and_then(|p| text(p, "name"))
        .unwrap_or_else(|| sender(body));
    let commits: Vec<&Value> = body
        .get("commits")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let title = if body.get("deleted").and_then(Value::as_bool) == Some(true) {
        format!("{pusher} deleted {kind} {name}")
    } else if commits.is_empty() {
        format!("{pusher} pushed {kind} {name}")
    } else {
        let n = commits.len();
        let plural = if n == 1 { "commit" } else { "commits" };
        format!("{pusher} pushed {n} {plural} to {name}")
    };
    let mut message = repo.to_owned();
    for commit in commits {
        let id = text(commit, "id").unwrap_or("");
        let subject = text(commit, "message").and_then(|m| m.lines().next());
        message.push_str(&format!(
            "\n{} {}",
            &id[..id.len().min(7)],
            subject.unwrap_or("")
        ));
    }
    let url =
        text(body, "compare").or_else(|| body.get("repository").and_then(|r| text(r, "html_url")));
    Ok(SendRequest {
        message,
        title: Some(title),
        url: url.map(str::to_owned),
        ..SendRequest::default()
    })
}

/// `Release <tag>: <name>` published, with its notes.
fn release(body: &Value) -> Result<SendRequest, ApiError> {
    let repo = repository(body)?;
    let release = object(body, "release")?;
    let tag = text(release, "tag_name").unwrap_or("?");
    let kind = if release.get("prerelease").and_then(Value::as_bool) == Some(true) {
        "Pre-release"
    } else {
        "Release"
    };
    let title = match text(release, "name")
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != tag)
    {
        Some(name) => format!("{kind} {tag}: {}", one_line(name)),
        None => format!("{kind} {tag}"),
    };
    Ok(SendRequest {
        message: with_body(
            format!("{repo} {tag} published by {}", sender(body)),
            release,
        ),
        title: Some(title),
        url: text(release, "html_url").map(str::to_owned),
        ..SendRequest::default()
    })
}

/// `Issue #<n> <action>: <title>`.
fn issue(body: &Value, action: &str) -> Result<SendRequest, ApiError> {
    let repo = repository(body)?;
    let issue = object(body, "issue")?;
    thread(body, issue, "Issue", action, repo)
}

/// `PR #<n> <action>: <title>`, where a closed and merged pull request says `merged`.
fn pull_request(body: &Value, action: &str) -> Result<SendRequest, ApiError> {
    let repo = repository(body)?;
    let pull = object(body, "pull_request")?;
    let merged = pull.get("merged").and_then(Value::as_bool) == Some(true);
    let action = if action == "closed" && merged {
        "merged"
    } else {
        action
    };
    thread(body, pull, "PR", action, repo)
}

/// An issue or pull request `item` that was opened, closed, merged or reopened; an opened one
/// carries its description.
fn thread(
    body: &Value,
    item: &Value,
    what: &str,
    action: &str,
    repo: &str,
) -> Result<SendRequest, ApiError> {
    let number = item.get("number").and_then(Value::as_u64).ok_or_else(|| {
        not_the_shape(
            "github",
            &format!("expected the {what}'s numeric \"number\""),
        )
    })?;
    let subject = one_line(text(item, "title").unwrap_or(""));
    let head = format!("{repo}#{number} {action} by {}", sender(body));
    Ok(SendRequest {
        message: if action == "opened" {
            with_body(head, item)
        } else {
            head
        },
        title: Some(format!("{what} #{number} {action}: {subject}")),
        url: text(item, "html_url").map(str::to_owned),
        ..SendRequest::default()
    })
}

/// `head`, then the item's `body` text (a release's notes, an issue's description) if any.
fn with_body(head: String, item: &Value) -> String {
    match text(item, "body").map(str::trim).filter(|b| !b.is_empty()) {
        Some(text) => format!("{head}\n{}", text.replace("\r\n", "\n")),
        None => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let text = match name {
            "ping" => include_str!("../../tests/fixtures/hooks/github_ping.json"),
            "workflow_run" => include_str!("../../tests/fixtures/hooks/github_workflow_run.json"),
            "push" => include_str!("../../tests/fixtures/hooks/github_push.json"),
            "release" => include_str!("../../tests/fixtures/hooks/github_release.json"),
            "issues" => include_str!("../../tests/fixtures/hooks/github_issues.json"),
            "pull_request" => include_str!("../../tests/fixtures/hooks/github_pull_request.json"),
            other => panic!("no sample {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn sent(event: &str, body: &Value) -> SendRequest {
        match map(Some(event), body).unwrap() {
            Mapped::Send(request) => request,
            Mapped::Nothing(w) => panic!("{event}: nothing sent ({w:?})"),
        }
    }

    #[test]
    fn a_ping_sends_nothing_and_warns_of_nothing() {
        assert_eq!(
            map(Some("ping"), &sample("ping")).unwrap(),
            Mapped::Nothing(Vec::new())
        );
    }

    #[test]
    fn a_failed_run_is_high_and_every_state_of_a_run_shares_its_key() {
        let mut body = sample("workflow_run");
        let failed = sent("workflow_run", &body);
        assert_eq!(failed.title.as_deref(), Some("✘ CI failed on main"));
        assert_eq!(failed.priority, Some(Priority::High));
        assert_eq!(
            failed.message,
            "Codertocat/Hello-World: Update README.md (run #562)"
        );
        assert_eq!(
            failed.url.as_deref(),
            Some("https://github.com/Codertocat/Hello-World/actions/runs/30433642")
        );
        assert_eq!(failed.key.as_deref(), Some("gh:run:30433642"));
        assert_eq!(
            failed.tags,
            Some(vec!["github".into(), "workflow_run".into()])
        );
        body["workflow_run"]["conclusion"] = "success".into();
        let passed = sent("workflow_run", &body);
        assert_eq!(passed.title.as_deref(), Some("✔ CI passed on main"));
        assert_eq!(passed.priority, Some(Priority::Default));
        body["action"] = "in_progress".into();
        body["workflow_run"]["conclusion"] = Value::Null;
        let running = sent("workflow_run", &body);
        assert_eq!(running.title.as_deref(), Some("CI running on main"));
        assert_eq!(running.key, failed.key);
        body["action"] = "completed".into();
        body["workflow_run"]["conclusion"] = "cancelled".into();
        let cancelled = sent("workflow_run", &body);
        assert_eq!(cancelled.title.as_deref(), Some("✘ CI failed on main"));
        assert!(cancelled.message.ends_with("(run #562), cancelled"));
    }

    /// The sample of `event` sends this title, message and link.
    fn assert_sends(event: &str, title: &str, message: &str, url: &str) {
        let sent = sent(event, &sample(event));
        assert_eq!(sent.title.as_deref(), Some(title), "{event}");
        assert_eq!(sent.message, message, "{event}");
        assert_eq!(sent.url.as_deref(), Some(url), "{event}");
    }

    /// The sample of `event` with this `action` sends nothing, with a warning naming both.
    fn assert_ignored(event: &str, action: &str) {
        let mut body = sample(event);
        body["action"] = action.into();
        assert_eq!(
            map(Some(event), &body).unwrap(),
            Mapped::Nothing(vec![Warning::GithubEventIgnored(format!(
                "{event}.{action}"
            ))])
        );
    }

    #[test]
    fn a_push_lists_its_commits_under_the_repository() {
        assert_sends(
            "push",
            "Codertocat pushed 2 commits to main",
            "Codertocat/Hello-World\n6113728 Fix the nightly backup\n0000000 Update README.md",
            "https://github.com/Codertocat/Hello-World/compare/6113728f27ae...000000000000",
        );
        let mut tag = sample("push");
        tag["ref"] = "refs/tags/v1.0".into();
        tag["commits"] = serde_json::json!([]);
        assert_eq!(
            sent("push", &tag).title.as_deref(),
            Some("Codertocat pushed tag v1.0")
        );
    }

    #[test]
    fn a_published_release_carries_its_notes() {
        assert_sends(
            "release",
            "Release v0.2.0: Backups that tell",
            "Codertocat/Hello-World v0.2.0 published by Codertocat\nHeartbeats and hooks.\n\nSee the changelog.",
            "https://github.com/Codertocat/Hello-World/releases/tag/v0.2.0",
        );
        assert_ignored("release", "created");
    }

    #[test]
    fn issues_and_pull_requests_say_what_happened_to_which() {
        assert_sends(
            "issues",
            "Issue #1 opened: Spelling error in the README file",
            "Codertocat/Hello-World#1 opened by Codertocat\nIt looks like you accidently spelled 'commit' with two 't's.",
            "https://github.com/Codertocat/Hello-World/issues/1",
        );
        assert_sends(
            "pull_request",
            "PR #2 merged: Update the README with new information.",
            "Codertocat/Hello-World#2 merged by Codertocat",
            "https://github.com/Codertocat/Hello-World/pull/2",
        );
        assert_ignored("issues", "labeled");
    }

    #[test]
    fn other_events_are_ignored_with_a_warning() {
        let star = serde_json::json!({"action": "created", "repository": {"full_name": "a/b"}});
        assert_eq!(
            map(Some("star"), &star).unwrap(),
            Mapped::Nothing(vec![Warning::GithubEventIgnored("star".into())])
        );
        let fork = serde_json::json!({"repository": {"full_name": "a/b"}});
        assert_eq!(
            map(Some("fork"), &fork).unwrap(),
            Mapped::Nothing(vec![Warning::GithubEventIgnored("fork".into())])
        );
    }

    #[test]
    fn a_missing_event_header_or_a_body_of_another_shape_is_invalid_body() {
        let body = sample("push");
        assert_eq!(map(None, &body).unwrap_err().code, ErrorCode::InvalidBody);
        assert_eq!(
            map(Some("push"), &serde_json::json!([1])).unwrap_err().code,
            ErrorCode::InvalidBody
        );
        for event in ["workflow_run", "push", "issues"] {
            let refused = map(Some(event), &serde_json::json!({"action": "opened"})).unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidBody, "{event}");
        }
    }
}
