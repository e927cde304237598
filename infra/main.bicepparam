using 'main.bicep'

param workspaceResourceId = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/security-rg/providers/Microsoft.OperationalInsights/workspaces/sentinel-ws'
param namePrefix = 'sbridge'
param enrichMode = 'comment'
// Generate each with `openssl rand -hex 32`; give the same value to the vendor's webhook header.
param sourceSecrets = {
  noxys: readEnvironmentVariable('SOURCE_NOXYS_SECRET', '')
  trapeye: readEnvironmentVariable('SOURCE_TRAPEYE_SECRET', '')
  apono: readEnvironmentVariable('SOURCE_APONO_SECRET', '')
}
// Generate each once with `openssl rand -hex 32` and keep them (a secret store, your pipeline's secrets): the
// playbook's key for /api/enrich, and the key that seals spilled batches. Same values on every deployment.
param enrichKey = readEnvironmentVariable('ENRICH_KEY')
param spillSigningKey = readEnvironmentVariable('SPILL_SIGNING_KEY')
// Seed 001: also send Noxys events to Sekoia XDR (EU intake).
param sekoiaSources = []
param sekoiaIntakeKey = readEnvironmentVariable('SEKOIA_INTAKE_KEY', '')
// Required: the object id of Sentinel's service principal ("Azure Security Insights") in your tenant:
//   export SENTINEL_AUTOMATION_PRINCIPAL_ID=$(az ad sp show --id 98785600-1bb7-4fb9-b9fa-19afe2c8a360 --query id -o tsv)
param sentinelAutomationPrincipalId = readEnvironmentVariable('SENTINEL_AUTOMATION_PRINCIPAL_ID')
// Business impact: Reader for the function on the resource groups that hold the assets it rates (tags through
// Azure Resource Graph, availability through Resource Health), as 'subscriptionId/resourceGroupName'.
param assetResourceGroups = []
