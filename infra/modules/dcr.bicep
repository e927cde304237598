// One Direct data collection rule with a stream and a data flow per table (a DCE only for private networking),
// and Monitoring Metrics Publisher for the function's identity on this DCR alone.
param name string
param location string
param workspaceResourceId string
param tables array
@description('The streams\' declarations, keyed by stream name (infra/schema.json).')
param streamDeclarations object
param privateNetworking bool
param principalId string

var metricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource dce 'Microsoft.Insights/dataCollectionEndpoints@2024-03-11' = if (privateNetworking) {
  name: '${name}-dce'
  location: location
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Disabled'
    }
  }
}

resource dcr 'Microsoft.Insights/dataCollectionRules@2024-03-11' = {
  name: name
  location: location
  kind: 'Direct'
  properties: {
    dataCollectionEndpointId: privateNetworking ? dce.id : null
    streamDeclarations: streamDeclarations
    destinations: {
      logAnalytics: [
        {
          workspaceResourceId: workspaceResourceId
          name: 'sentinel'
        }
      ]
    }
    dataFlows: [for t in tables: {
      streams: [
        t.stream
      ]
      destinations: [
        'sentinel'
      ]
      transformKql: 'source'
      outputStream: t.stream
    }]
  }
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: dcr
  name: guid(dcr.id, principalId, metricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', metricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output immutableId string = dcr.properties.immutableId
output logsIngestionEndpoint string = privateNetworking ? dce.properties.logsIngestion.endpoint : dcr.properties.endpoints.logsIngestion
