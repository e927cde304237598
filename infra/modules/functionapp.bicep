// The Function App for the custom handler (Linux, Flex Consumption), running as the user-assigned identity:
// identity-based AzureWebJobsStorage, code from the deployment container read with that identity, Key Vault
// references for the source secrets, HTTPS only, FTP off. Flex is the one plan here that receives code without
// a shared key: Elastic Premium needs an Azure Files content share, which the storage account (shared keys off)
// cannot serve, so it is not offered.
param name string
param location string
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param appInsightsConnectionString string
param vaultName string
param sources array
param logsIngestionEndpoint string
param dcrImmutableId string
@description('Every rule\'s ARM id, for `sentinel-bridge doctor` (DCR_RESOURCE_ID, comma-separated).')
param dcrResourceIds array
@description('Streams carried by rules past the first, each `<stream>=<immutable id>` (empty: none).')
param dcrStreamRules array
param workspaceCustomerId string
param workspaceResourceId string
param enrichMode string
param openAiEndpoint string
param openAiDeployment string
param sekoiaSources array
param sekoiaIntakeUrl string
// HTTP requests one instance takes at once. A webhook request mostly waits for its batched ingestion call
// (BATCH_LINGER_MS, then Azure's answer), so throughput grows with concurrency: `bench webhook --batch 1`
// measured 307 events/s at 16, 1,214 at 64, 4,639 at 256 (p99 88 ms) and 8,807 at 512 (p99 75 ms) on two
// cores; 256 keeps half that headroom (README, "Benchmarks"). Flex Consumption's default is 16.
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 256

var baseSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccountName
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'LOGS_INGESTION_ENDPOINT'
    value: logsIngestionEndpoint
  }
  {
    name: 'DCR_IMMUTABLE_ID'
    value: dcrImmutableId
  }
  {
    name: 'LOG_ANALYTICS_WORKSPACE_ID'
    value: workspaceCustomerId
  }
  {
    name: 'SENTINEL_WORKSPACE_RESOURCE_ID'
    value: workspaceResourceId
  }
  {
    name: 'ENRICH_MODE'
    value: enrichMode
  }
  {
    name: 'DCR_RESOURCE_ID'
    value: join(dcrResourceIds, ',')
  }
  {
    name: 'DCR_STREAM_RULES'
    value: join(dcrStreamRules, ',')
  }
  {
    // Accepted events wait in this account's queue when a destination is down (functions/redeliver drains it).
    name: 'SPILL'
    value: 'azure-queue'
  }
  {
    // Read by the bridge and by functions/redeliver and functions/deadletter (`%SPILL_QUEUE%`), so the queue
    // the bridge writes and the one the triggers read cannot disagree; storage.bicep creates it and its poison queue.
    name: 'SPILL_QUEUE'
    value: 'sentinel-bridge-spill'
  }
  {
    // Seals every spill message and dead letter: one the function did not write is set aside, never ingested.
    name: 'SPILL_SIGNING_KEY'
    value: '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=spill-signing-key)'
  }
  {
    // What the playbook sends in x-enrich-key: /api/enrich is anonymous to the host and checks this itself.
    name: 'ENRICH_KEY'
    value: '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=enrich-key)'
  }
]

var openAiSettings = empty(openAiEndpoint) ? [] : [
  {
    name: 'AZURE_OPENAI_ENDPOINT'
    value: openAiEndpoint
  }
  {
    name: 'AZURE_OPENAI_DEPLOYMENT'
    value: openAiDeployment
  }
]

var sekoiaSettings = empty(sekoiaSources) ? [] : [
  {
    name: 'SEKOIA_INTAKE_URL'
    value: sekoiaIntakeUrl
  }
  {
    name: 'SEKOIA_INTAKE_KEY'
    value: '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=sekoia-intake-key)'
  }
]

var destinationSettings = [for s in sekoiaSources: {
  name: 'SOURCE_${toUpper(replace(s, '-', '_'))}_DESTINATIONS'
  value: 'sentinel,sekoia'
}]

var secretSettings = [for s in sources: {
  name: 'SOURCE_${toUpper(replace(s, '-', '_'))}_SECRETS'
  value: '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=source-${s}-secrets)'
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Zone redundancy needs Premium with at least three always-on instances; left to the operator's cost choice.
  name: '${name}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; senders retry on 503 and nothing accepted is lost.
  //checkov:skip=CKV_AZURE_213:The Functions host polls the handler's readiness itself; /api/health needs the function key, which App Service health checks do not send.
  //checkov:skip=CKV_AZURE_17:Webhook senders authenticate with their own secret and the function key; client certificates are not something vendors' consoles can send.
  //checkov:skip=CKV_AZURE_222:Vendors post from the internet; public access is the point of a webhook receiver.
  name: name
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(baseSettings, openAiSettings, sekoiaSettings, destinationSettings, secretSettings)
    }
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
