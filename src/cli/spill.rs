//! `sentinel-bridge spill replay`: what was set aside goes back to the spill, to be redelivered once the cause
//! is fixed: the dead-letter store of a `dir:` spill; for `azure-queue`, the dead-letter blobs (batches set
//! aside with their reason, and messages the `deadletter` function took off the poison queue) and anything
//! still on `<queue>-poison`.

use super::CliResult;
use crate::app::storage_client;
use crate::azure::identity::Credential;
use crate::delivery::spill::{Spill, DEAD_LETTER_PREFIX};
use crate::settings::{Settings, SpillSetting};

pub async fn replay(settings: &Settings) -> CliResult {
    match &settings.spill {
        SpillSetting::Dir(dir) => {
            let spill = Spill::open(dir, settings.spill_limits)?;
            let moved = spill.replay_dead_letters()?;
            println!("moved {moved} dead-letter batch(es) in {} back to their queues", dir.display());
            Ok(())
        }
        SpillSetting::AzureQueue { .. } => replay_poison(settings).await,
        SpillSetting::Off => Err("SPILL is off: there is nothing to replay".into()),
    }
}

async fn replay_poison(settings: &Settings) -> CliResult {
    let SpillSetting::AzureQueue { storage, queue, .. } = &settings.spill else {
        return Err("SPILL is not azure-queue".into());
    };
    let cred = Credential::for_setting(&settings.identity)?;
    let client = storage_client(storage, cred)?;
    let poison = format!("{queue}-poison");
    let mut moved = 0;
    loop {
        let batch = client.get_messages(&poison, 32, 60).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            // The text is moved as stored (base64), so the trigger reads it exactly as before.
            client.put_message(queue, &m.text).await?;
            client.delete_message(&poison, &m).await?;
            moved += 1;
        }
    }
    println!("moved {moved} message(s) from {poison} back to {queue}");
    // Dead letters kept in blobs: a batch set aside with its reason, or a poison message kept as it came.
    let SpillSetting::AzureQueue { container, .. } = &settings.spill else { return Ok(()) };
    let mut replayed = 0;
    for name in client.list_blobs(container, DEAD_LETTER_PREFIX).await? {
        let text = client.get_blob(container, &name).await?;
        let letter: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{name}: unreadable dead letter: {e}"))?;
        let message = match (letter.get("batch"), letter.get("message").and_then(|m| m.as_str())) {
            (Some(batch), _) => base64::Engine::encode(&base64::engine::general_purpose::STANDARD, batch.to_string()),
            (None, Some(message)) => base64::Engine::encode(&base64::engine::general_purpose::STANDARD, message),
            (None, None) => return Err(format!("{name}: a dead letter with neither a batch nor a message").into()),
        };
        client.put_message(queue, &message).await?;
        client.delete_blob(container, &name).await?;
        replayed += 1;
    }
    println!("moved {replayed} dead letter(s) from {container}/{DEAD_LETTER_PREFIX} back to {queue}");
    Ok(())
}
