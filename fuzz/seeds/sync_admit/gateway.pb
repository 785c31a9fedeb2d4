®F
defaultwebR0
	fleetgate#
httpHTTPP"*.b.example*
Sameá
defaultappZq

defaultwebapp.b.exampleP
/"E
defaultappê? *0
BackendNotFoundService default/app not foundF
defaultwebR0
	fleetgate#
httpHTTPP"*.b.example*
Sameá
defaultappZq

defaultwebapp.b.exampleP
/"E
defaultappê? *0
BackendNotFoundService default/app not found