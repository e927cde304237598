//! `sentinel-bridge spill replay`: what was set aside goes back to the spill, to be redelivered once the cause
//! is fixed: the dead-letter store of a `dir:` spill; for `azure-queue`, the dead-letter blobs (batches set
//! aside with their reason, and messages the `deadletter` function took off the poison queue) and anything
//! still on `<queue>-poison`.

use super::CliResult;
use crate::app::storage_client;
use crate::azure::identity::Credential;
use crate::delivery::spill::{Spill, DEAD_LETTER_PREFIX, FORGED};
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
    // Dead letters kept in blobs: a batch set aside with its reason, or a message kept as it came. Each blob's
    // seal is checked before anything in it is put back; a batch is sealed afresh, a message goes back as it
    // came (the function checks its seal again). Messages set aside for a missing or wrong seal stay.
    let SpillSetting::AzureQueue { container, seal, .. } = &settings.spill else { return Ok(()) };
    let (mut replayed, mut left) = (0, 0);
    for name in client.list_blobs(container, DEAD_LETTER_PREFIX).await? {
        let stored = client.get_blob(container, &name).await?;
        let Ok(text) = seal.open(&stored) else {
            eprintln!("{name}: left in place: its seal does not match SPILL_SIGNING_KEY (not written by this spill, or altered)");
            left += 1;
            continue;
        };
        let letter: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("{name}: unreadable dead letter: {e}"))?;
        if letter["reason"].as_str().is_some_and(|r| r.starts_with(FORGED)) {
            eprintln!("{name}: left in place: {}", crate::model::text::printable(letter["reason"].as_str().unwrap_or_default(), 300));
            left += 1;
            continue;
        }
        let message = match (letter.get("batch"), letter.get("message").and_then(|m| m.as_str())) {
            (Some(batch), _) => seal.seal(&batch.to_string()),
            (None, Some(message)) => message.to_string(),
            (None, None) => return Err(format!("{name}: a dead letter with neither a batch nor a message").into()),
        };
        client.put_message(queue, &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, message)).await?;
        client.delete_blob(container, &name).await?;
        replayed += 1;
    }
    println!("moved {replayed} dead letter(s) from {container}/{DEAD_LETTER_PREFIX} back to {queue}; left {left} that the spill did not write");
    Ok(())
}
