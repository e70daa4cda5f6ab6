// Submit a form when one of its [data-autosubmit] fields changes (the language switch). An external file rather than
// an onchange="" attribute: the Content-Security-Policy allows no inline script.
document.addEventListener("change", function (event) {
  var field = event.target;
  if (field && field.matches && field.matches("[data-autosubmit]") && field.form) {
    field.form.submit();
  }
});
