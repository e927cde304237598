// The function host's own storage account: shared keys off (identity-based AzureWebJobsStorage), TLS 1.2,
// no public blob access; the deployment container and the spill queue live here. The identity gets only the
// data roles the host needs, on this account alone.
param name string
param location string
param principalId string

var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_206:Replication is the region's default; the account holds only host state and a transient spill queue.
  //checkov:skip=CKV_AZURE_35:The Functions host reaches its storage over the public endpoint unless the app is VNet-integrated; access is Entra-only (shared keys off).
  //checkov:skip=CKV_AZURE_59:The Functions host reaches its storage over the public endpoint unless the app is VNet-integrated; access is Entra-only (shared keys off).
  name: name
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'deployments'
  properties: {
    publicAccess: 'None'
  }
}

resource spillBlobs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'sentinel-bridge-spill'
  properties: {
    publicAccess: 'None'
  }
}

// Standard Webhooks message ids already ingested, one blob each, shared by every instance. A marker matters
// only while its message's signed timestamp is accepted (at most an hour); the policy below removes them.
resource replayBlobs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'sentinel-bridge-replay'
  properties: {
    publicAccess: 'None'
  }
}

// Enrichments the playbook polls for (the HTTP action's asynchronous pattern): the state and answer of each run,
// read by whichever instance the poll reaches. A run's answer matters for minutes; the policy below removes them.
resource enrichRunBlobs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'sentinel-bridge-enrich-runs'
  properties: {
    publicAccess: 'None'
  }
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-replay-markers-and-enrich-runs'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'sentinel-bridge-replay/'
                'sentinel-bridge-enrich-runs/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: 1
                }
              }
            }
          }
        }
      ]
    }
  }
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource spill 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queues
  name: 'sentinel-bridge-spill'
}

resource poison 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queues
  name: 'sentinel-bridge-spill-poison'
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in items(roles): {
  scope: account
  name: guid(account.id, principalId, role.value)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

output name string = account.name
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}deployments'
