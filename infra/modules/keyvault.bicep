// Key Vault in RBAC mode holding each source's webhook secrets (comma-separated for rotation). The function's
// identity may read secrets from this vault only.
param name string
param location string
param principalId string
@secure()
param sourceSecrets object
@secure()
param sekoiaIntakeKey string
@secure()
param enrichKey string
@secure()
param spillSigningKey string

var secretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:The Functions host resolves Key Vault references over the public endpoint unless VNet-integrated; access is RBAC-only.
  //checkov:skip=CKV_AZURE_189:Public network access stays on for the same reason; no access policy or key grants anything.
  name: name
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for s in items(sourceSecrets): {
  //checkov:skip=CKV_AZURE_41:Webhook secrets are rotated by the operator with their vendors; a fixed expiry would stop ingestion unannounced.
  parent: vault
  name: 'source-${s.key}-secrets'
  properties: {
    value: s.value
    contentType: 'text/plain'
  }
}]

resource sekoiaKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(sekoiaIntakeKey)) {
  //checkov:skip=CKV_AZURE_41:The intake key is rotated with Sekoia by the operator; a fixed expiry would stop the fan-out unannounced.
  //checkov:skip=CKV_AZURE_114:contentType is set below; checkov does not read the properties of a conditional resource.
  parent: vault
  name: 'sekoia-intake-key'
  properties: {
    value: sekoiaIntakeKey
    contentType: 'text/plain'
  }
}

// The playbook's key for /api/enrich and the spill's sealing key: the deployment's own secrets, so the first
// deployment never waits on the Functions host runtime to hand out a key.
resource enrichKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:Rotated by the operator ("<new>,<old>"); a fixed expiry would stop enrichment unannounced.
  parent: vault
  name: 'enrich-key'
  properties: {
    value: enrichKey
    contentType: 'text/plain'
  }
}

resource spillSigningKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:Rotated by the operator ("<new>,<old>"); an expiry would leave spilled batches unsealable.
  parent: vault
  name: 'spill-signing-key'
  properties: {
    value: spillSigningKey
    contentType: 'text/plain'
  }
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, principalId, secretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
