// Reader on one resource group of the assets the enrichment rates, for the function's identity: business impact
// reads their tags through Azure Resource Graph (Microsoft.ResourceGraph/resources/read) and their availability
// through Azure Resource Health (Microsoft.ResourceHealth/AvailabilityStatuses/current/read), both in Reader's
// `*/read` (contract seed004-surfaces.md §4, §5). Read only; assigned where the assets are, nowhere else.
targetScope = 'resourceGroup'

param principalId string

// Reader (built-in role, azure-docs role-based-access-control/built-in-roles/general.md).
var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource assetReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
