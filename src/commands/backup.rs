//! `erpd backup ID [--out FILE]`, `erpd backup --all [--out-dir DIR]` and
//! `erpd restore ID FILE`.
//!
//! Backups work beside a running server (a backup is a copy under one SQLite read
//! transaction);
//! restore moves files, so it refuses while a server serves the data directory.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{BackupArgs, Cli};
use crate::platform::model::TenantStatus;
use crate::platform::store;
use crate::tenancy::lifecycle::Actor;
use crate::tenancy::{Tenancy, TenantId, backup};

pub async fn backup(cli: &Cli, args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let tenancy = super::tenancy(cli).await?;
    let actor = Actor::cli();
    if let Some(id) = &args.id {
        let id = TenantId::parse(id)?;
        let dest = match &args.out {
            Some(out) => out.clone(),
            None => tenancy
                .layout
                .backups_dir()
                .join(backup::default_backup_name(&id)),
        };
        let info = tenancy
            .backup_to(&id, &dest, true, &actor)
            .await
            .with_context(|| format!("backing up {id}"))?;
        eprintln!(
            "{id}: {} bytes in {} ms ({})",
            info.bytes,
            info.took.as_millis(),
            info.method.label()
        );
        println!("{}", info.path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let dir = match &args.out_dir {
        Some(d) => d.clone(),
        None => tenancy.layout.backups_dir(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    backup_all(&tenancy, &dir, &actor).await
}

async fn backup_all(tenancy: &Tenancy, dir: &Path, actor: &Actor) -> anyhow::Result<ExitCode> {
    let ids: Vec<TenantId> = tenancy
        .platform
        .read(store::all_tenants)
        .await?
        .into_iter()
        .filter(|r| r.status != TenantStatus::Deleted)
        .map(|r| r.id)
        .collect();
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} backing up [{bar:40}] {pos}/{len} {per_sec} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let (mut bytes, mut failed) = (0u64, Vec::new());
    for id in &ids {
        bar.set_message(id.to_string());
        let dest = dir.join(backup::default_backup_name(id));
        match tenancy.backup_to(id, &dest, true, actor).await {
            Ok(info) => bytes += info.bytes,
            Err(e) => {
                bar.println(format!("{id}: FAILED: {e}"));
                failed.push((id.clone(), e.to_string()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backup: {} tenants, {} ok, {} failed, {bytes} bytes in {secs:.1} s, into {}",
        ids.len(),
        ids.len() - failed.len(),
        failed.len(),
        dir.display()
    );
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!("failed:");
    for (id, e) in failed {
        println!("  {id}: {e}");
    }
    Ok(ExitCode::FAILURE)
}

pub async fn restore(cli: &Cli, id: &str, file: &Path) -> anyhow::Result<ExitCode> {
    let id = TenantId::parse(id)?;
    let tenancy = super::tenancy(cli).await?;
    super::require_offline(&tenancy.layout)?;
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    // Stage a private copy on the tenants' filesystem: validation migrates it in place,
    // and the final rename must not cross filesystems.
    let staged = tenancy.layout.tenant_partial(&id);
    let (from, to) = (file.to_owned(), staged.clone());
    crate::db::blocking(move || {
        std::fs::copy(&from, &to)?;
        Ok(())
    })
    .await
    .with_context(|| format!("copying {}", file.display()))?;
    let record = tenancy
        .restore_backup(&id, staged, &Actor::cli(), || {})
        .await
        .with_context(|| format!("restoring {id} from {}", file.display()))?;
    println!(
        "tenant {} restored from {} (schema {})",
        record.id,
        file.display(),
        record.schema_version
    );
    Ok(ExitCode::SUCCESS)
}
