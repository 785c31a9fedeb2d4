öF
defaultwebR0
	fleetgate#
httpHTTPP"*.a.example*
SameÄ
defaultwebZj

defaultwebapp.a.exampleI"G
defaultechoê? *1
BackendNotFoundService default/echo not foundF
defaultwebR0
	fleetgate#
httpHTTPP"*.a.example*
SameÄ
defaultwebZj

defaultwebapp.a.exampleI"G
defaultechoê? *1
BackendNotFoundService default/echo not found