package controller

// GitStepError exports gitStepError to the tests of package controller_test.
var GitStepError = gitStepError

// SetRevisionConditions exports setRevisionConditions to the tests of package controller_test.
var SetRevisionConditions = setRevisionConditions
