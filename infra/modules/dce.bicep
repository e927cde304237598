// One data collection endpoint for every rule: the bridge's single LOGS_INGESTION_ENDPOINT, whatever the number
// of rules (a rule holds 10 streams; each Direct rule would have an endpoint of its own). Public, as the function
// that posts to it is; private networking needs an Azure Monitor private link scope and VNet integration, which
// this deployment does not build (README, "Infrastructure").
param name string
param location string

resource dce 'Microsoft.Insights/dataCollectionEndpoints@2024-03-11' = {
  name: name
  location: location
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

output id string = dce.id
output logsIngestionEndpoint string = dce.properties.logsIngestion.endpoint
