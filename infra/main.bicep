// sentinel-bridge: the whole integration in one deployment, into the resource group of an existing
// Sentinel-enabled Log Analytics workspace. Least privilege: every role is scoped to one resource, nothing to
// the subscription.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam
targetScope = 'resourceGroup'

@description('Resource id of the existing Sentinel-enabled Log Analytics workspace (in this resource group).')
param workspaceResourceId string

@description('Region for the new resources.')
param location string = resourceGroup().location

@description('Short prefix for resource names (letters and digits).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'sbridge'

@description('Per-source webhook secrets, as {"noxys": "<secret>[,<next secret>]", ...}; stored in Key Vault.')
@secure()
param sourceSecrets object

@description('The key the enrichment playbook sends to /api/enrich (x-enrich-key), at least 32 characters: `openssl rand -hex 32`. Stored in Key Vault; the function reads it as ENRICH_KEY. Keep the same value across deployments (rotate as "<new>,<old>").')
@secure()
@minLength(32)
param enrichKey string

@description('The key that seals every spill message and dead letter in the function\'s storage account, at least 32 characters: `openssl rand -hex 32`. Stored in Key Vault (SPILL_SIGNING_KEY). Keep it across deployments: spilled batches sealed with a key the function no longer holds are set aside, not delivered (rotate as "<new>,<old>").')
@secure()
@minLength(32)
param spillSigningKey string

@description('Enrichment mode: observe, comment or act.')
@allowed([
  'observe'
  'comment'
  'act'
])
param enrichMode string = 'comment'

@description('Object id of the "Azure Security Insights" service principal in this tenant, so automation rules can run the playbook: az ad sp show --id 98785600-1bb7-4fb9-b9fa-19afe2c8a360 --query id -o tsv')
@minLength(36)
@maxLength(36)
param sentinelAutomationPrincipalId string

@description('Sources whose events also go to Sekoia XDR (seed 001), e.g. ["noxys"]. Empty: Sentinel only.')
param sekoiaSources array = []

@description('Sekoia intake key (stored in Key Vault). Required when sekoiaSources is not empty.')
@secure()
param sekoiaIntakeKey string = ''

@description('Sekoia intake base URL: the EU intake by default, so data stays in the EU.')
param sekoiaIntakeUrl string = 'https://intake.sekoia.io'

@description('Optional Azure OpenAI endpoint and deployment for the enrichment narrative.')
param openAiEndpoint string = ''
param openAiDeployment string = ''

@description('Resource groups of the assets whose tags and health business impact reads, as subscriptionId/resourceGroupName: the function gets Reader on each')
param assetResourceGroups array = []

@description('HTTP requests one function instance takes at once (measured with `sentinel-bridge bench webhook`: see the README).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 256

var workspaceName = last(split(workspaceResourceId, '/'))
var suffix = uniqueString(resourceGroup().id, namePrefix)
var schema = loadJsonContent('schema.json')
var sources = [for s in items(sourceSecrets): s.key]

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: '${namePrefix}-id-${suffix}'
    location: location
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: '${namePrefix}-ai-${suffix}'
    location: location
    workspaceResourceId: workspaceResourceId
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: take('${namePrefix}st${suffix}', 24)
    location: location
    principalId: identity.outputs.principalId
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: take('${namePrefix}-kv-${suffix}', 24)
    location: location
    principalId: identity.outputs.principalId
    sourceSecrets: sourceSecrets
    sekoiaIntakeKey: sekoiaIntakeKey
    enrichKey: enrichKey
    spillSigningKey: spillSigningKey
  }
}

module tables 'modules/tables.bicep' = {
  name: 'tables'
  params: {
    workspaceName: workspaceName
    tables: schema.tables
  }
}

module dce 'modules/dce.bicep' = {
  name: 'dce'
  params: {
    name: '${namePrefix}-dce-${suffix}'
    location: location
  }
}

// A rule holds 10 streams: schema.json's `rules` carry the tables ten at a time, all behind the one endpoint.
module dcr 'modules/dcr.bicep' = [for (rule, i) in schema.rules: {
  name: 'dcr-${i}'
  dependsOn: [
    tables
  ]
  params: {
    name: '${namePrefix}-dcr-${suffix}${i == 0 ? '' : '-${i}'}'
    location: location
    workspaceResourceId: workspaceResourceId
    endpointId: dce.outputs.id
    tables: rule.tables
    streamDeclarations: rule.streamDeclarations
    principalId: identity.outputs.principalId
  }
}]

module workspaceRoles 'modules/workspace-roles.bicep' = {
  name: 'workspace-roles'
  params: {
    workspaceName: workspaceName
    principalId: identity.outputs.principalId
  }
}

// Business impact reads the tags and health of the incidents' assets: Reader on the resource groups that hold
// them (each 'subscriptionId/resourceGroupName'). Without it the enrichment says what it could not read and
// rates those assets unknown; for a whole subscription, assign Reader there yourself (README, "Business impact").
module assetReaders 'modules/asset-reader.bicep' = [for rg in assetResourceGroups: {
  name: 'asset-reader-${uniqueString(rg)}'
  scope: resourceGroup(split(rg, '/')[0], split(rg, '/')[1])
  params: {
    principalId: identity.outputs.principalId
  }
}]

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: '${namePrefix}-fn-${suffix}'
    location: location
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    vaultName: vault.outputs.name
    sources: sources
    logsIngestionEndpoint: dce.outputs.logsIngestionEndpoint
    dcrImmutableId: dcr[0].outputs.immutableId
    // Every rule's ARM id (DCR_RESOURCE_ID), so doctor checks each one's streams, flows, destination and binding.
    dcrResourceIds: [for (rule, i) in schema.rules: dcr[i].outputs.id]
    // Streams of the rules past the first, as the bridge reads them (DCR_STREAM_RULES).
    dcrStreamRules: [for o in schema.overflow: '${o.stream}=${dcr[o.rule].outputs.immutableId}']
    workspaceCustomerId: workspace.properties.customerId
    workspaceResourceId: workspaceResourceId
    enrichMode: enrichMode
    openAiEndpoint: openAiEndpoint
    openAiDeployment: openAiDeployment
    sekoiaSources: sekoiaSources
    sekoiaIntakeUrl: sekoiaIntakeUrl
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
  }
}

module sentinel 'modules/sentinel.bicep' = {
  name: 'sentinel-content'
  dependsOn: [
    tables
  ]
  params: {
    workspaceName: workspaceName
    location: location
    playbookName: '${namePrefix}-enrich-${suffix}'
    functionHostName: functionApp.outputs.defaultHostName
    enrichKey: enrichKey
    sentinelAutomationPrincipalId: sentinelAutomationPrincipalId
  }
}

@description('Each source\'s webhook URL. Add the function key (?code=) from the portal or `az functionapp function keys list`; no Entra secret ever leaves Azure.')
output webhookUrls array = [for s in sources: 'https://${functionApp.outputs.defaultHostName}/api/webhook/${s}']
output dcrImmutableIds array = [for (rule, i) in schema.rules: dcr[i].outputs.immutableId]
output logsIngestionEndpoint string = dce.outputs.logsIngestionEndpoint
output functionAppName string = functionApp.outputs.name
output identityPrincipalId string = identity.outputs.principalId
