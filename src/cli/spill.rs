//! `sentinel-bridge spill replay`: what was set aside goes back to the spill, to be redelivered once the cause
//! is fixed: the dead-letter store of a `dir:` spill, or the poison queue (`<queue>-poison`: messages the host
//! gave up on and records Azure refused) of `azure-queue`.

use super::CliResult;
use crate::app::storage_client;
use crate::azure::identity::Credential;
use crate::delivery::spill::Spill;
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
    Ok(())
}
