//! `sentinel-bridge spill replay-poison`: messages the host gave up on (`<queue>-poison`) go back to the spill
//! queue, to be redelivered once the cause is fixed.

use super::CliResult;
use crate::app::settings::{Settings, SpillSetting};
use crate::app::storage_client;
use crate::azure::identity::credential_for;

pub async fn replay_poison(settings: &Settings) -> CliResult {
    let SpillSetting::AzureQueue { storage, queue, .. } = &settings.spill else {
        return Err("SPILL is not azure-queue (set SPILL=azure-queue and the AzureWebJobsStorage settings)".into());
    };
    let (cred, _) = credential_for(&settings.identity)?;
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
